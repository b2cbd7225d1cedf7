// Plan-time checks of the fields every ovs kind shares: the portable policies as Open vSwitch can honour them,
// VLANs, and the keys of external_ids that are vnetplan's own.
#include <map>

#include "providers/ovs/kind.h"

namespace vnetplan::ovs {

namespace {

// What OVS itself does, in the portable security vocabulary: a learning switch delivers a port only the frames
// addressed to it or flooded (no promiscuous mode), and filters neither changed nor forged source MACs.
const std::map<std::string, bool>& nativeSecurity() {
  static const std::map<std::string, bool> values{{"security.allowPromiscuous", false},
                                                  {"security.allowMacChanges", true},
                                                  {"security.allowForgedTransmits", true}};
  return values;
}

void checkSecurity(const FieldCheck& fc) {
  auto native = nativeSecurity().find(fc.path);
  if (native == nativeSecurity().end() || !fc.value.is_boolean() || fc.value.get<bool>() == native->second) return;
  unsupported(fc, std::string("Open vSwitch is a learning switch that ") +
                      (fc.path == "security.allowPromiscuous" ? "never delivers a port frames not addressed to it"
                                                              : "does not filter source MAC addresses") +
                      "; enforcing " + fc.path + ": " + fc.value.dump() +
                      " needs OpenFlow rules, which vnetplan does not write yet");
}

// A PortGroup's or Port's teaming (inherited from the Switch's uplinks); the Switch's own is checked there.
void checkPortTeaming(const FieldCheck& fc) {
  auto it = fc.resource.origins.find(fc.path);
  const bool explicitly = it == fc.resource.origins.end() || it->second.origin == Origin::Explicit;
  if (explicitly)
    unsupported(fc, "teaming is a property of the switch's uplink bond; OVS has no per-port-group failover order");
}

void checkExternalIds(const FieldCheck& fc) {
  if (isVnetplanKey(fc.path.substr(std::string("ovs.externalIds.").size())))
    fc.fail(fc.resource.addr.str() + ": field " + fc.path + ": keys starting with 'vnetplan:' are vnetplan's own");
}

}  // namespace

void unsupported(const FieldCheck& fc, const std::string& why) {
  fc.fail(fc.resource.addr.str() + ": field " + fc.path + " is not supported by the ovs provider: " + why,
          "provider/unsupported");
}

const std::vector<FieldRule>& commonOvsFields() {
  static const std::vector<FieldRule> fields{
      {"security.", checkSecurity}, {"teaming.", checkPortTeaming}, {"ovs.externalIds.", checkExternalIds}};
  return fields;
}

void checkVlanField(const FieldCheck& fc) {
  if (fc.path == "vlan") {
    if (fc.value.is_number_integer() && fc.value.get<int64_t>() == 4095)
      fc.fail("field vlan: 4095 (all VLANs, guest tagging) is ESXi only; on OVS use vlan: {trunk: [\"1-4094\"]}",
              "provider/unsupported");
    return;
  }
  std::string why;
  if (!canonicalTrunks(fc.value, &why)) fc.fail("field vlan.trunk: " + why, "provider/invalid");
}

std::string ovsNameProblem(const std::string& n) {
  if (n.empty()) return "empty";
  if (n.size() > 255) return "longer than 255 bytes";
  for (unsigned char c : n)
    if (c < 0x21 || c == 0x7f || c == '/') return "contains whitespace, '/' or a control character";
  return "";
}

}  // namespace vnetplan::ovs
