// JSON encoding of the model's plain values, shared by saved plans, the journal and the state store.
#pragma once
#include "base/result.h"
#include "model/model.h"
#include "model/step.h"

namespace vnetplan {

Json toJson(const Address& a);              // "T/Kind/name"
Result<Address> addressFromJson(const Json& j);
Json toJson(const Target& t);
Result<Target> targetFromJson(const Json& j);
Json toJson(const Step& s);
Result<Step> stepFromJson(const Json& j);
// Attrs are encoded flat: {"mtu": 1500, "security.allowPromiscuous": false}
Json flatJson(const Attrs& a);
Attrs attrsFromFlatJson(const Json& j);

// A provider identity as {"id": ..., "revision": ...} (null when empty), and back.
Json toJson(const ProviderIdentity& id);
ProviderIdentity identityFromJson(const Json& j);

// Stable fingerprint of a live object: its attributes and its provider identity (id and revision), so a saved
// plan is stale when either moved ("absent" when the object does not exist).
std::string fingerprint(const ObservedObject* live);
std::string fingerprint(const std::optional<Attrs>& live);
std::string fingerprint(const Attrs* live);  // nullptr = absent

}  // namespace vnetplan
