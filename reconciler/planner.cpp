#include "reconciler/planner.h"

#include <algorithm>
#include <optional>
#include <set>

#include "base/parallel.h"
#include "base/toposort.h"
#include "model/codec.h"
#include "model/references.h"

namespace vnetplan {

int kindRank(Kind k) {
  switch (k) {
    case Kind::Target: return 0;
    case Kind::Vpc: return 1;
    case Kind::Switch: return 2;
    case Kind::Network: return 3;
    case Kind::Subnet: return 4;
    case Kind::PortGroup: return 5;
    case Kind::SecurityGroup: return 6;
    case Kind::Port: return 7;
    case Kind::Route: return 8;
    case Kind::Mirror: return 9;
  }
  return 10;
}

static Json sortedIfList(const Json& v) {
  if (!v.is_array()) return v;
  Json s = v;
  std::sort(s.begin(), s.end());
  return s;
}

bool valuesEqual(const Json* desired, const Json* live, bool unordered) {
  const bool dNull = !desired || desired->is_null();
  const bool lNull = !live || live->is_null();
  if (dNull || lNull) {
    // An empty list and an absent one mean the same thing ("no addresses").
    auto emptyish = [](const Json* j) { return !j || j->is_null() || (j->is_array() && j->empty()); };
    return emptyish(desired) && emptyish(live);
  }
  if (unordered) return sortedIfList(*desired) == sortedIfList(*live);
  return *desired == *live;
}

static bool matchesAny(const std::string& p, const std::vector<std::string>& patterns) {
  for (const auto& pat : patterns) {
    if (p == pat) return true;
    if (!pat.empty() && pat.back() == '.' && p.rfind(pat, 0) == 0) return true;
  }
  return false;
}

bool matchesAny(const std::vector<std::string>& paths, const std::vector<std::string>& patterns) {
  return std::any_of(paths.begin(), paths.end(), [&](const std::string& p) { return matchesAny(p, patterns); });
}

// Attributes a provider observes about an object's state that no manifest sets (a veth peer's link state):
// compared with a pre-image, never against desired values, never shown as manifests.
static bool statusPath(const std::string& p) { return p.rfind("status.", 0) == 0; }

// Both attribute maps are sorted by path, so one merge walk pairs every path with its counterpart (no lookups).
// `visit(path, desiredValue, liveValue)` is called once per path in either map, in path order, with null for the
// side that lacks it; the changed paths come out sorted.
template <class Visit>
static void mergeWalk(const Attrs& desired, const Attrs& live, Visit&& visit) {
  const auto& d = desired.values();
  const auto& l = live.values();
  auto di = d.begin(), li = l.begin();
  while (di != d.end() || li != l.end()) {
    const int order = di == d.end() ? 1 : li == l.end() ? -1 : di->first.compare(li->first);
    if (order < 0) {
      visit(di->first, &di->second, nullptr);
      ++di;
    } else if (order > 0) {
      visit(li->first, nullptr, &li->second);
      ++li;
    } else {
      visit(di->first, &di->second, &li->second);
      ++di;
      ++li;
    }
  }
}

std::vector<std::string> diffAttrs(const Attrs& desired, const Attrs& live, const KindTraits& traits) {
  std::vector<std::string> changed;
  mergeWalk(desired, live, [&](const std::string& path, const Json* want, const Json* have) {
    if (want) {
      if (!valuesEqual(want, have, matchesAny(path, traits.unorderedLists))) changed.push_back(path);
    } else if (traits.exhaustive && !statusPath(path) && !matchesAny(path, traits.managedOnlyWhenSet) &&
               !valuesEqual(nullptr, have, false)) {
      changed.push_back(path);
    }
  });
  return changed;
}

std::vector<std::string> diffExact(const Attrs& want, const Attrs& live, const KindTraits& traits) {
  std::vector<std::string> changed;
  mergeWalk(want, live, [&](const std::string& path, const Json* w, const Json* have) {
    if (!valuesEqual(w, have, w && matchesAny(path, traits.unorderedLists))) changed.push_back(path);
  });
  return changed;
}

void applyDefaults(Resource& r, const KindTraits& traits) {
  for (const auto& [path, value] : traits.defaults) {
    if (r.attrs.has(path)) continue;
    r.attrs.set(path, value);
    r.origins[path] = AttrOrigin{Origin::Default, ""};
  }
}

static std::string showValue(const Json* v) {
  if (!v || v->is_null()) return "(unset)";
  return v->dump();
}

static std::string changeSummary(const std::vector<std::string>& paths, const Attrs& desired, const Attrs& live) {
  std::string out;
  for (const auto& p : paths) {
    if (!out.empty()) out += ", ";
    out += p + " " + showValue(live.find(p)) + " -> " + showValue(desired.find(p));
  }
  return out;
}

static std::string describeChange(const Provider& provider, const Target& target, const ResourceChange& c) {
  Step s{c.addr, StepAction::Create, c.before.value_or(Attrs{}), c.after.value_or(Attrs{}), c.changedPaths};
  if (c.action == Action::Delete) s.action = StepAction::Delete;
  if (c.action == Action::Update || c.action == Action::Release) s.action = StepAction::Update;
  return provider.describe(s, target);
}

// Fills action, changed paths, disruptive and description for one address.
static ResourceChange diffOne(const Address& addr, const Attrs* desired, const ObservedObject* liveObj,
                              const Provider& provider, const Target& target, bool exact = false) {
  const Attrs* live = liveObj ? &liveObj->attrs : nullptr;
  ResourceChange c;
  c.addr = addr;
  if (liveObj) c.identity = liveObj->identity;
  c.provider = std::string(provider.name());
  if (live) c.before = *live;
  if (desired) c.after = *desired;
  const KindTraits* traits = provider.traits(addr.kind);
  static const KindTraits kNone{};
  const KindTraits& tr = traits ? *traits : kNone;
  if (desired && !live) {
    c.action = Action::Create;
  } else if (!desired && live) {
    c.action = Action::Delete;
    c.disruptive = true;
  } else if (desired && live) {
    c.changedPaths = exact ? diffExact(*desired, *live, tr) : diffAttrs(*desired, *live, tr);
    bool removesFixed = false;
    for (const auto& p : c.changedPaths) {
      const Json* d = desired->find(p);
      if ((!d || d->is_null()) && matchesAny(p, tr.replaceOnRemove)) removesFixed = true;
    }
    if (c.changedPaths.empty()) c.action = Action::NoOp;
    else if (removesFixed || matchesAny(c.changedPaths, tr.replaceOn)) {
      c.action = Action::Replace;
      c.disruptive = true;
    } else {
      c.action = Action::Update;
      c.disruptive = matchesAny(c.changedPaths, tr.disruptiveOn);
    }
  }
  if (c.action != Action::NoOp && c.action != Action::Adopt) c.description = describeChange(provider, target, c);
  return c;
}

static ResourceChange releaseChange(const state::OwnedObject& owned, const ObservedObject& live, const Provider& provider,
                             const Target& target) {
  ResourceChange c;
  c.addr = owned.addr;
  c.provider = std::string(provider.name());
  c.action = Action::Release;
  c.before = live.attrs;
  c.identity = live.identity;
  // Back to how it was when vnetplan adopted it, every attribute (detached again if it was then).
  c.after = owned.preAdoption ? *owned.preAdoption : live.attrs;
  const KindTraits* tr = provider.traits(owned.addr.kind);
  c.changedPaths = diffExact(*c.after, live.attrs, tr ? *tr : KindTraits{});
  c.disruptive = !c.changedPaths.empty();
  c.reason = c.changedPaths.empty() ? "adopted, now out of the manifests: released (ownership dropped; it stays)"
                                    : "adopted, now out of the manifests: released as it was when adopted (it stays)";
  if (!c.changedPaths.empty()) c.description = describeChange(provider, target, c);
  return c;
}

// Below this many objects (declared plus owned) a target is compared on one thread: starting threads costs more.
constexpr size_t kParallelDiffObjects = 256;

void planTarget(const std::vector<const Resource*>& desired, const TargetView& view, Plan& plan,
                Diagnostics& diags) {
  const Provider& provider = *view.provider;
  // Each object is compared on its own (diffOne and describe are pure), so a large target is compared on every
  // core; what follows (messages, ownership, drift reasons) runs in manifest order as before.
  const int workers = parallelWorkers(desired.size() + view.owned->size(), kParallelDiffObjects);
  std::vector<const ObservedObject*> lives(desired.size());
  std::vector<ResourceChange> diffs(desired.size());
  forEachParallelChunks(desired.size(), workers, [&](size_t i) {
    const Resource* r = desired[i];
    auto liveIt = view.observed->objects.find(r->addr);
    lives[i] = liveIt != view.observed->objects.end() ? &liveIt->second : nullptr;
    diffs[i] = diffOne(r->addr, &r->attrs, lives[i], provider, *view.target);
  });
  plan.changes.reserve(plan.changes.size() + desired.size());
  std::set<Address> seen;
  for (size_t i = 0; i < desired.size(); ++i) {
    const Resource* r = desired[i];
    seen.insert(r->addr);
    const ObservedObject* liveObj = lives[i];
    const Attrs* live = liveObj ? &liveObj->attrs : nullptr;
    auto ownedIt = view.owned->find(r->addr);
    const bool owned = ownedIt != view.owned->end();
    if (live && !owned && !r->adopt) {
      diags.error(r->loc,
                  r->addr.str() + " already exists on the target and is not managed by vnetplan; set "
                                  "spec.adopt: true to take ownership of it, or choose another name",
                  "unmanaged-collision");
      continue;
    }
    ResourceChange c = std::move(diffs[i]);
    if (live && (c.action == Action::Update || c.action == Action::Replace)) provider.checkChange(*r, *live, diags);
    c.origins = r->origins;
    c.adopt = live && !owned;
    c.deleteOnRelease = r->deleteOnRelease;
    // Taking ownership is a change even when nothing else is: vnetplan may delete what it owns later.
    if (c.adopt && c.action == Action::NoOp) c.action = Action::Adopt;
    switch (c.action) {
      case Action::Create:
        c.reason = owned ? "owned by vnetplan but missing from the target (deleted out of band)"
                         : "declared in manifests, not present on the target";
        break;
      case Action::NoOp:
        c.reason = "up to date";
        break;
      case Action::Adopt:
        c.reason = "adopting an existing object that already matches (vnetplan will own it; it is released, "
                   "not deleted, when it leaves the manifests)";
        break;
      default: {
        // Drift if the manifest still says what was last applied but the live value moved.
        bool drifted = owned && std::all_of(c.changedPaths.begin(), c.changedPaths.end(), [&](const std::string& p) {
                         return valuesEqual(r->attrs.find(p), ownedIt->second.lastApplied.find(p), false);
                       });
        std::string what = changeSummary(c.changedPaths, r->attrs, *live);
        c.reason = (c.adopt ? "adopting; " : drifted ? "drift (changed out of band): " : "manifest changed: ") + what;
        if (c.action == Action::Replace) c.reason += " (cannot change in place)";
      }
    }
    plan.changes.push_back(std::move(c));
  }
  // Owned objects no longer declared: delete what vnetplan created, release what it adopted.
  for (const auto& [addr, ownedObj] : *view.owned) {
    if (seen.count(addr)) continue;
    auto liveIt = view.observed->objects.find(addr);
    ResourceChange c;
    c.addr = addr;
    c.provider = std::string(provider.name());
    c.action = Action::Delete;
    if (ownedObj.adopted && !ownedObj.deleteOnRelease && liveIt != view.observed->objects.end()) {
      plan.changes.push_back(releaseChange(ownedObj, liveIt->second, provider, *view.target));
      continue;
    }
    if (liveIt != view.observed->objects.end()) {
      c.before = liveIt->second.attrs;
      c.identity = liveIt->second.identity;
      c.disruptive = true;
      c.reason = "removed from manifests; owned by vnetplan";
      c.description = describeChange(provider, *view.target, c);
    } else {
      c.reason = "removed from manifests and already gone from the target; forgetting it";
    }
    plan.changes.push_back(std::move(c));
  }
  // Drift: live differs from what was last applied (compared on every core too, reported in address order).
  std::vector<const std::pair<const Address, state::OwnedObject>*> ownedList;
  ownedList.reserve(view.owned->size());
  for (const auto& entry : *view.owned) ownedList.push_back(&entry);
  std::vector<std::optional<DriftEntry>> drifts(ownedList.size());
  forEachParallelChunks(ownedList.size(), workers, [&](size_t i) {
    const auto& [addr, ownedObj] = *ownedList[i];
    auto liveIt = view.observed->objects.find(addr);
    DriftEntry d;
    if (liveIt == view.observed->objects.end()) {
      d.paths = {"(deleted)"};
    } else {
      const KindTraits* tr = provider.traits(addr.kind);
      d.paths = diffAttrs(ownedObj.lastApplied, liveIt->second.attrs, tr ? *tr : KindTraits{});
      if (d.paths.empty()) return;
      d.live = liveIt->second.attrs;
    }
    d.addr = addr;
    d.lastApplied = ownedObj.lastApplied;
    drifts[i] = std::move(d);
  });
  for (auto& d : drifts)
    if (d) plan.drift.push_back(std::move(*d));
  // Fingerprint everything the plan touches, so a saved plan can detect that the target moved.
  if (!view.fingerprints) return;
  for (const auto& c : plan.changes) {
    if (c.addr.target != view.target->name) continue;
    auto liveIt = view.observed->objects.find(c.addr);
    plan.liveFingerprints[c.addr.str()] =
        fingerprint(liveIt == view.observed->objects.end() ? nullptr : &liveIt->second);
  }
}

std::vector<ResourceChange> planTowards(const std::map<Address, std::optional<Attrs>>& preImage,
                                        const Observation& live, const Provider& provider, const Target& target) {
  std::vector<ResourceChange> changes;
  for (const auto& [addr, want] : preImage) {
    auto it = live.objects.find(addr);
    ResourceChange c =
        diffOne(addr, want ? &*want : nullptr, it != live.objects.end() ? &it->second : nullptr, provider, target,
                /*exact=*/true);
    c.reason = "rollback to the state before the apply";
    changes.push_back(std::move(c));
  }
  // The pre-image was a valid order once; a cycle cannot appear in it, but keep whatever order there is.
  (void)orderChanges(changes);
  return changes;
}

Status orderChanges(std::vector<ResourceChange>& changes) {
  // Targets in name order; inside a target, what a change refers to (its desired attributes, or the live ones of
  // a delete) comes first. Ties: the usual kind order, then the name, so plans read the same every time.
  std::map<Address, size_t> index;
  for (size_t i = 0; i < changes.size(); ++i) index.emplace(changes[i].addr, i);
  std::vector<std::vector<size_t>> deps(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    const ResourceChange& c = changes[i];
    const Attrs* attrs = c.after ? &*c.after : c.before ? &*c.before : nullptr;
    if (!attrs) continue;
    for (const auto& to : referencesOf(c.addr, *attrs))
      if (auto it = index.find(to); it != index.end()) deps[i].push_back(it->second);
  }
  auto before = [&](size_t a, size_t b) {
    const Address &x = changes[a].addr, &y = changes[b].addr;
    if (x.target != y.target) return x.target < y.target;
    int rx = kindRank(x.kind), ry = kindRank(y.kind);
    if (rx != ry) return rx < ry;
    return x.name < y.name;
  };
  TopoOrder order = topoSort(deps, before);
  if (!order.cycle.empty()) {
    std::string path;
    for (size_t i : order.cycle) path += (path.empty() ? "" : " -> ") + changes[i].addr.str();
    std::vector<size_t> all(changes.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    std::stable_sort(all.begin(), all.end(), before);  // a usable order all the same
    std::vector<ResourceChange> sorted;
    for (size_t i : all) sorted.push_back(std::move(changes[i]));
    changes = std::move(sorted);
    return err("reference cycle: " + path + " (each refers to the next; nothing can be created first)");
  }
  std::vector<ResourceChange> sorted;
  sorted.reserve(changes.size());
  for (size_t i : order.order) sorted.push_back(std::move(changes[i]));
  changes = std::move(sorted);
  return {};
}

std::vector<std::string> verifyAgainst(const std::map<Address, std::optional<Attrs>>& expected,
                                       const Observation& live, const Provider& provider, bool exact) {
  std::vector<std::string> problems;
  for (const auto& [addr, want] : expected) {
    auto it = live.objects.find(addr);
    if (!want) {
      if (it != live.objects.end()) problems.push_back(addr.str() + ": still present, expected absent");
      continue;
    }
    if (it == live.objects.end()) {
      problems.push_back(addr.str() + ": missing, expected present");
      continue;
    }
    const KindTraits* tr = provider.traits(addr.kind);
    const KindTraits& traits = tr ? *tr : KindTraits{};
    for (const auto& path : exact ? diffExact(*want, it->second.attrs, traits) : diffAttrs(*want, it->second.attrs, traits))
      problems.push_back(addr.str() + ": " + path + ": desired " + showValue(want->find(path)) + ", live " +
                         showValue(it->second.attrs.find(path)));
  }
  return problems;
}

}  // namespace vnetplan
