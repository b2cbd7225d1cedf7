#include "reconciler/pipeline.h"

#include <fstream>
#include <sstream>

#include "reconciler/builder.h"
#include "reconciler/codec.h"
#include "reconciler/lint.h"
#include "reconciler/manifest.h"
#include "reconciler/schema_validator.h"

namespace vnetplan {

namespace {

std::string digestOf(const std::vector<Document>& docs, const std::vector<std::string>& files,
                     const std::string& inlineText) {
  std::string all;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    all += f + '\0' + ss.str() + '\0';
  }
  if (files.empty() && !docs.empty()) all = inlineText;
  return sha256Hex(all);
}

void checkWithProviders(DesiredState& desired, const ProviderRegistry& providers, Diagnostics& diags) {
  for (const auto& t : desired.targets) {
    Provider* p = providers.find(t.provider);
    if (!p) {
      std::string hint = closestMatch(t.provider, providers.names());
      diags.error(t.loc, "Target " + t.name + ": provider '" + t.provider + "' is not available in this build" +
                             (hint.empty() ? "" : " (did you mean '" + hint + "'?)"),
                  "provider");
      continue;
    }
    p->checkTarget(t, diags);
  }
  for (auto& r : desired.resources) {
    const Target* t = desired.findTarget(r.addr.target);
    if (!t) continue;
    Provider* p = providers.find(t->provider);
    if (!p) continue;
    const KindTraits* traits = p->traits(r.addr.kind);
    if (!traits) {
      diags.error(r.loc, r.addr.str() + ": provider " + t->provider + " cannot manage kind " + kindName(r.addr.kind),
                  "provider-kind");
      continue;
    }
    p->check(r, *t, diags);
    p->normalize(r);
    applyDefaults(r, *traits);
  }
}

DesiredState finish(std::vector<Document> docs, const std::string& inlineText, const ProviderRegistry& providers,
                    Diagnostics& diags) {
  SchemaValidator validator;
  std::vector<Document> valid;
  for (auto& d : docs)
    if (validator.validate(d, diags)) valid.push_back(std::move(d));
  DesiredState desired = buildDesiredState(valid, diags);
  desired.digest = digestOf(valid, desired.files, inlineText);
  if (!inlineText.empty()) desired.files.clear();
  lint(desired, diags);
  checkWithProviders(desired, providers, diags);
  return desired;
}

}  // namespace

DesiredState loadDesired(const std::vector<std::string>& paths, const ProviderRegistry& providers,
                         Diagnostics& diags) {
  auto docs = loadManifests(paths, diags);
  return finish(std::move(docs), "", providers, diags);
}

DesiredState loadDesiredText(const std::string& text, const std::string& name, const ProviderRegistry& providers,
                             Diagnostics& diags) {
  auto docs = loadManifestText(text, name, diags);
  return finish(std::move(docs), text, providers, diags);
}

Result<LiveTarget> connectAndObserve(const Target& target, const ProviderRegistry& providers) {
  LiveTarget lt;
  lt.target = target;
  lt.provider = providers.find(target.provider);
  if (!lt.provider) return err("target " + target.name + ": unknown provider '" + target.provider + "'");
  auto session = lt.provider->connect(target);
  if (!session) return err("target " + target.name + ": " + session.error().message);
  lt.session = std::move(*session);
  auto observed = lt.session->observe();
  if (!observed) return err("target " + target.name + ": observe: " + observed.error().message);
  lt.observed = std::move(*observed);
  return lt;
}

std::map<Address, Attrs> ownedOf(const state::TargetState& st) {
  std::map<Address, Attrs> out;
  for (const auto& [addr, obj] : st.owned) out[addr] = obj.lastApplied;
  return out;
}

Result<Plan> planAgainst(const DesiredState& desired, const std::set<std::string>& onlyTargets,
                         const std::map<std::string, TargetSnapshot>& snapshots, const ProviderRegistry& providers,
                         Diagnostics& diags) {
  Plan plan;
  plan.manifestsDigest = desired.digest;
  plan.manifestFiles = desired.files;
  for (const auto& name : onlyTargets)
    if (!desired.findTarget(name)) return err("--target " + name + ": no such Target in the manifests");
  for (const auto& t : desired.targets) {
    if (!onlyTargets.empty() && !onlyTargets.count(t.name)) continue;
    auto snap = snapshots.find(t.name);
    if (snap == snapshots.end()) return err("target " + t.name + ": no observation");
    const Provider* provider = providers.find(t.provider);
    if (!provider) return err("target " + t.name + ": unknown provider '" + t.provider + "'");
    TargetView view;
    view.target = &t;
    view.provider = provider;
    view.observed = &snap->second.observed;
    view.owned = &snap->second.owned;
    std::vector<const Resource*> mine;
    for (const auto& r : desired.resources)
      if (r.addr.target == t.name) mine.push_back(&r);
    plan.targets.push_back(t);
    planTarget(mine, view, plan, diags);
  }
  sortChanges(plan.changes);
  for (const auto& d : diags.items())
    if (d.severity == Severity::Warning) plan.warnings.push_back(d);
  return plan;
}

Result<Plan> planDesired(const DesiredState& desired, const std::set<std::string>& onlyTargets,
                         state::Store& store, const ProviderRegistry& providers, Diagnostics& diags) {
  std::map<std::string, TargetSnapshot> snapshots;
  for (const auto& t : desired.targets) {
    if (!onlyTargets.empty() && !onlyTargets.count(t.name)) continue;
    auto live = connectAndObserve(t, providers);
    if (!live) return live.error();
    auto st = store.load(t.name);
    if (!st) return err("state for target " + t.name + ": " + st.error().message);
    snapshots[t.name] = TargetSnapshot{std::move(live->observed), ownedOf(*st)};
  }
  return planAgainst(desired, onlyTargets, snapshots, providers, diags);
}

}  // namespace vnetplan
