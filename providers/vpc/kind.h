// The kinds of the vpc provider over Neutron, one row each (reconciler/kind_table.h):
//   Vpc           = a router (+ external gateway for internetGateway, SNAT for natGateway) and, per peering, a
//                   transit network + subnet with an interface of each of the two routers
//   Subnet        = a network (+ VLAN provider segment) + a subnet (+ an interface of its Vpc's router if public)
//   SecurityGroup = a security group and its rules (Neutron has no rule update: changed rules are deleted and
//                   created)
//   Route         = an extra route of its Vpc's router (add_extraroutes / remove_extraroutes), recorded by a tag
//                   on the router
// Ownership is by tags, never by names (Neutron names are not unique): every object vnetplan creates carries
// `vnetplan:owner=TARGET` and `vnetplan:address=TARGET/Kind/name`; observe lists only objects with this Target's
// owner tag, so an untagged object of the same name is never seen, changed or deleted.
#pragma once
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "base/netaddr.h"
#include "model/model.h"
#include "model/step.h"
#include "providers/vpc/neutron.h"
#include "reconciler/kind_table.h"

namespace vnetplan::vpc {

inline constexpr const char* kOwnerTag = "vnetplan:owner=";
inline constexpr const char* kAddressTag = "vnetplan:address=";
inline constexpr const char* kVpcTag = "vnetplan:vpc=";    // Subnet networks, SecurityGroups: their Vpc
inline constexpr const char* kPeerTag = "vnetplan:peer=";  // peering transit network/subnet/port: the peer Vpc
inline constexpr const char* kRouteTag = "vnetplan:route=";  // on a router: one Route ("DEST NEXTHOP NAME")
// The description of what vnetplan creates: "vnetplan ADDRESS". It lets a create whose outcome is unknown (no
// answer, a 5xx) find the object it may have made before tagging it.
inline constexpr const char* kDescriptionPrefix = "vnetplan ";
inline constexpr size_t kMaxTag = 255;  // Neutron's limit

// The value after `prefix` of the first tag of `obj` that starts with it.
std::optional<std::string> tagValue(const Json& obj, const std::string& prefix);
std::vector<std::string> tagsWith(const Json& obj, const std::string& prefix);
// The address an object's tags give it, if it carries this target's owner tag.
std::optional<Address> taggedAddress(const Json& obj, const std::string& target);
// The Route tag: "DEST NEXTHOP NAME" with the '/' of DEST written '|' (a tag is a URL path segment in
// PUT /routers/ID/tags/TAG, and Neutron would split the path at an encoded '/').
std::string routeTag(const std::string& dest, const std::string& nexthop, const std::string& name);
struct RouteTag {
  std::string dest, nexthop, name;
};
std::optional<RouteTag> parseRouteTag(const std::string& value);

std::string jsonString(const Json& obj, const char* key);  // "" unless a string
std::string revisionOf(const Json& obj);                   // revision_number as text ("" if none)
// The canonical text of a prefix / an address ("" if unreadable).
std::string canonicalPrefix(const std::string& text);
std::string canonicalAddress(const std::string& text);
// The n-th address of a prefix (1 = the first host).
std::string nthAddress(const std::string& prefix, int n);

// Everything one observe read: the tagged objects of this target, indexed.
struct Snapshot {
  std::string target, projectId;
  std::vector<Json> routers, networks, subnets, groups, interfacePorts, externals;

  struct Transit {
    const Json* network = nullptr;
    const Json* subnet = nullptr;  // null if missing
    std::string vpc, peer;
  };
  std::map<std::string, const Json*> routerOfVpc;      // Vpc name -> router
  std::map<std::string, std::string> vpcOfRouter;      // router id -> Vpc name
  std::map<std::string, const Json*> networkOfSubnet;  // Subnet name -> network
  std::map<std::string, const Json*> subnetOfSubnet;   // Subnet name -> subnet
  std::map<std::string, const Json*> groupByName;      // SecurityGroup name -> group
  std::map<std::string, std::string> groupNameById;
  std::vector<Transit> transits;
  std::map<std::string, std::vector<const Json*>> interfacesOfRouter;  // router id -> its interface ports
  std::map<std::string, std::string> externalNameById;                // by name where names are unique

  void index();  // after the vectors are filled (the pointers point into them)
  // True if router `routerId` has an interface on subnet `subnetId` (at `ip` when given).
  bool hasInterface(const std::string& routerId, const std::string& subnetId, const std::string& ip = "") const;
  std::string externalName(const std::string& id) const;
};

// What a step runs against. Shared by the workers of one batch: every member function is thread-safe.
class ApplyCtx {
 public:
  struct Settings {
    std::string target, projectId, physicalNetwork;
    bool noauth = false;
  };
  ApplyCtx(Neutron& api, const Snapshot& snap, Settings settings)
      : api_(api), snap_(snap), s_(std::move(settings)) {}

  Neutron& api() { return api_; }
  const Snapshot& snap() const { return snap_; }
  const std::string& target() const { return s_.target; }
  const std::string& physicalNetwork() const { return s_.physicalNetwork; }

  // A new object's body: name, description ("vnetplan ADDRESS"), the project under noauth.
  Json body(const Address& addr, const std::string& name) const;
  Json body(const Address& addr) const { return body(addr, addr.name); }
  const std::string& tenantUnderNoauth() const;  // "" with Keystone
  // The tags of an object vnetplan makes for `addr`, plus `extra`.
  std::vector<std::string> tags(const Address& addr, const std::vector<std::string>& extra = {}) const;

  // POST /COLLECTION {member: body}, then its tags (PUT .../tags). An object whose tags could not be set is
  // deleted again at once: an untagged object is one vnetplan would never find. So is one a POST with an unknown
  // outcome (no answer, 5xx, a reply that is not JSON) may have made: found by its name, description and the
  // missing owner tag.
  Result<Json> createTagged(const std::string& collection, const std::string& member, const Json& body,
                            const std::vector<std::string>& tags);
  Status addTag(const std::string& collection, const std::string& id, const std::string& tag);
  Status removeTag(const std::string& collection, const std::string& id, const std::string& tag);
  // DELETE /COLLECTION/ID; gone already is fine.
  Status remove(const std::string& collection, const std::string& id, const std::string& what);
  // PUT /routers/ID/ACTION; `tolerate` lists Neutron error types that mean "already so".
  Result<Json> routerAction(const std::string& routerId, const std::string& action, const Json& body,
                            const std::set<std::string>& tolerate = {});

  // Refuses (stale) if object `id` changed since it was observed: a PUT of its unchanged description with
  // If-Match: revision_number=N (Neutron checks it; router gateway updates alone would not). `planned` is the
  // revision the plan saw; after this session's own writes to the object, the revision they left is used.
  Status guard(const std::string& collection, const std::string& member, const std::string& id,
               const std::string& planned, const std::string& what);
  // A PUT of `attrs` guarded the same way (If-Match on the request itself).
  Result<Json> guardedUpdate(const std::string& collection, const std::string& member, const std::string& id,
                             const std::string& planned, const Json& attrs, const std::string& what);
  // This session wrote to `id`: its revision is `revision` now, or unknown ("").
  void wrote(const std::string& id, const std::string& revision = "");

  // Ids known now: the snapshot's, updated by this session's creates and deletes.
  std::optional<std::string> routerId(const std::string& vpc);
  void setRouter(const std::string& vpc, std::optional<std::string> id);
  std::optional<std::string> groupId(const std::string& name);
  void setGroup(const std::string& name, std::optional<std::string> id);
  struct NetIds {
    std::string network, subnet;
  };
  std::optional<NetIds> subnetIds(const std::string& name);
  void setSubnet(const std::string& name, std::optional<NetIds> ids);

  // Vpcs whose router the current batch deletes: what only stands in the way of that (an extra route made by
  // hand through a subnet being removed) may go with it.
  void setVpcsBeingDeleted(std::set<std::string> names);
  bool vpcBeingDeleted(const std::string& name);

  // The id of an external network given by name or id (asks Neutron once per session).
  Result<std::string> externalNetwork(const std::string& nameOrId);

 private:
  std::string cleanUpUnknownCreate(const std::string& collection, const std::string& member, const Json& body);
  Result<std::string> revisionFor(const std::string& collection, const std::string& member, const std::string& id,
                                  const std::string& planned);

  Neutron& api_;
  const Snapshot& snap_;
  Settings s_;
  std::mutex mu_;
  std::map<std::string, std::optional<std::string>> routers_, groups_;
  std::map<std::string, std::optional<NetIds>> subnets_;
  std::map<std::string, std::string> written_;  // id -> revision after our write ("" unknown)
  std::optional<std::vector<Json>> externals_;
  std::set<std::string> vpcsBeingDeleted_;
};

using Row = KindHooks<const Snapshot, ApplyCtx>;
using VpcKinds = KindTable<const Snapshot, ApplyCtx>;

extern const Row kVpcRow;
extern const Row kSubnetRow;
extern const Row kSecurityGroupRow;
extern const Row kRouteRow;
const VpcKinds& vpcKinds();

// The Vpcs whose router a step changes (its own, its Vpc's, its peers'): steps of different kinds on one router
// keep their plan order even where the reference graph does not order them (a Route needs its Subnet's
// interface; an interface cannot go while a route uses it).
std::set<std::string> routersTouched(const Step& step);

// ---- plan-time helpers shared by the rows (vpc_provider.cpp)
void fail(const Resource& r, Diagnostics& diags, const std::string& message, const char* code = "provider/invalid");

// ---- security group rules (rules.cpp)
// One Neutron rule, canonical: protocol "" (any), "tcp", "udp", "icmp" or a number; remote "" = anywhere in the
// ethertype; remoteGroup the group's id (desired: its name until resolved).
struct NRule {
  std::string direction, ethertype, protocol;
  int portMin = -1, portMax = -1;
  std::string remoteIp, remoteGroup, description;
  std::string id;  // live rules only
  auto key() const { return std::tie(direction, ethertype, protocol, portMin, portMax, remoteIp, remoteGroup, description); }
  bool operator<(const NRule& o) const { return key() < o.key(); }
  bool operator==(const NRule& o) const { return key() == o.key(); }
};
// Canonical manifest rules (normalize): protocol names, ports, cidr, no empty description.
Json canonicalRules(const Json& rules, std::string* why = nullptr);
// The Neutron rules a list of canonical manifest rules stands for (group names kept as names).
std::vector<NRule> expandRules(const Json& rules);
// A live Neutron rule (from a security group's security_group_rules).
NRule liveRule(const Json& r);
// Live rules folded back into canonical manifest rules (`groupName` names remote groups by id).
Json foldRules(const std::vector<NRule>& live, const std::map<std::string, std::string>& groupName);
// The body of POST /security-group-rules for one rule.
Json ruleBody(const NRule& r, const std::string& groupId);

}  // namespace vnetplan::vpc
