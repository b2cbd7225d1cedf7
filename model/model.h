// The typed model: kinds, addresses, attributes and resources.
//
// A resource's state (desired, live or last-applied) is an `Attrs`: a flat map from dotted attribute path
// ("mtu", "security.allowPromiscuous", "linux.bridge.forwardDelay") to a normalized JSON scalar or list.
// Providers parse what they need from it with the typed getters; the engine diffs it without knowing kinds.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/diag.h"

namespace vnetplan {

using Json = nlohmann::json;

enum class Kind { Target, Switch, PortGroup, Port, Network, Vpc, Subnet, SecurityGroup, Route, Mirror };

const char* kindName(Kind k);
std::optional<Kind> parseKind(const std::string& s);
const std::vector<Kind>& allKinds();

// TARGET/Kind/name
struct Address {
  std::string target;
  Kind kind = Kind::Switch;
  std::string name;
  std::string str() const;
  static std::optional<Address> parse(const std::string& s);
  auto operator<=>(const Address&) const = default;
};

class Attrs {
 public:
  // Transparent (std::less<>): paths are mostly literals ("security.allowForgedTransmits"), looked up without
  // making a std::string of them.
  using Map = std::map<std::string, Json, std::less<>>;
  Attrs() = default;
  bool has(std::string_view path) const { return values().find(path) != values().end(); }
  const Json* find(std::string_view path) const;
  void set(std::string_view path, Json v);
  void erase(std::string_view path);
  std::optional<int64_t> getInt(std::string_view path) const;
  std::optional<bool> getBool(std::string_view path) const;
  std::optional<std::string> getString(std::string_view path) const;
  std::vector<std::string> getStrings(std::string_view path) const;  // list of strings (or empty)
  const Map& values() const { return values_ ? *values_ : noValues(); }
  bool empty() const { return values().empty(); }
  // Attributes below a prefix ("security." ...).
  Attrs subtree(const std::string& prefix) const;
  Json toJson() const;  // nested object (dots expanded)
  static Attrs fromJson(const Json& flatOrNested);  // accepts nested objects, flattens them
  static Attrs fromMap(Map m);                       // takes a whole map (decoders build one in key order)
  bool operator==(const Attrs& o) const { return values_ == o.values_ || values() == o.values(); }

 private:
  // Copy on write: a plan holds the live and desired attributes of every object it covers, and journals, steps
  // and verification copy them again; copies share one map until one of them is changed.
  static const Map& noValues();
  Map& mut();
  std::shared_ptr<Map> values_;
};

// Where a desired attribute's value came from (plan shows inherit vs explicit).
enum class Origin { Explicit, Inherited, Default };
struct AttrOrigin {
  Origin origin = Origin::Explicit;
  std::string from;  // for Inherited: the address it was inherited from
};

struct Target {
  std::string name;
  std::string provider;  // linux | ovs | esxi | vpc
  Attrs spec;            // provider-specific connection fields (netns, db, host, ...)
  std::map<std::string, std::string> labels;
  SourceLoc loc;
};

struct Resource {
  Address addr;
  Attrs attrs;  // normalized desired attributes (spec minus targets/selector/adopt/justification)
  std::map<std::string, AttrOrigin> origins;
  std::vector<Address> dependsOn;  // e.g. a Port depends on its Switch
  std::map<std::string, std::string> labels;
  bool adopt = false;
  bool deleteOnRelease = false;  // onRelease: delete (an adopted object is otherwise released, never deleted)
  std::string justification;
  SourceLoc loc;  // the resource's metadata.name
  // Where each attribute's value is written ("mtu" -> the 9000 in the manifest). An inherited attribute points
  // at the declaring resource's value, so a message about it lands where the user can change it.
  std::map<std::string, SourceLoc> fieldLocs;
  const SourceLoc& locOf(const std::string& path) const {
    auto it = fieldLocs.find(path);
    return it == fieldLocs.end() ? loc : it->second;
  }
};

// Everything the manifests declare, after fan-out and inheritance.
struct DesiredState {
  std::vector<Target> targets;
  std::vector<Resource> resources;
  std::vector<std::string> files;  // manifest files read, sorted
  std::string digest;              // sha256 over the manifests' paths and bytes
  const Target* findTarget(const std::string& name) const;
};

}  // namespace vnetplan
