#include "reconciler/pipeline.h"

#include "base/retain.h"

#include <unistd.h>

#include "reconciler/frontcache.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <future>
#include <thread>
#include <condition_variable>
#include <mutex>

#include "reconciler/fanout.h"

#include "base/parallel.h"
#include "base/sha256.h"
#include "model/codec.h"
#include "reconciler/builder.h"
#include "reconciler/lint.h"
#include "reconciler/manifest.h"
#include "reconciler/schema_validator.h"
#include "state/store.h"

namespace vnetplan {

namespace {

// sha256 over the manifests' paths and bytes (of the files that held documents), or over the inline text.
std::string digestOf(const std::vector<ManifestSource>& sources, const std::vector<std::string>& files,
                     const std::string& inlineText) {
  if (files.empty()) return sha256Hex(inlineText);
  std::map<std::string, const std::string*> text;
  for (const auto& s : sources) text[s.file] = &s.text;
  std::string all;
  for (const auto& f : files) {
    auto it = text.find(f);
    all += f + '\0' + (it == text.end() ? std::string() : *it->second) + '\0';
  }
  return sha256Hex(all);
}

// Schema validation of every document, on every core for large inputs; diagnostics keep document order.
std::vector<Document> validateAll(std::vector<Document> docs, Diagnostics& diags) {
  // One per process, made on first use and never destroyed: it parses and compiles the whole schema, and a plan
  // validates twice (the Targets first, to start observing them early). It is thread-safe.
  static const SchemaValidator& validator = *new SchemaValidator;
  constexpr size_t kParallelDocs = 128;
  const size_t workers = static_cast<size_t>(parallelWorkers(docs.size(), kParallelDocs));
  std::vector<char> ok(docs.size(), 0);
  std::vector<Diagnostics> perWorker(workers);
  const size_t per = (docs.size() + workers - 1) / std::max<size_t>(workers, 1);
  auto run = [&](size_t w) {
    for (size_t i = w * per; i < std::min(docs.size(), (w + 1) * per); ++i)
      ok[i] = validator.validate(docs[i], perWorker[w]) ? 1 : 0;
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(run, w);
  run(0);
  for (auto& t : threads) t.join();
  for (const auto& d : perWorker) diags.append(d);
  std::vector<Document> valid;
  valid.reserve(docs.size());
  for (size_t i = 0; i < docs.size(); ++i)
    if (ok[i]) valid.push_back(std::move(docs[i]));
  return valid;
}

// Logs how long each phase took (debug level), for `--log-level debug` and the benchmarks.
class PhaseTimer {
 public:
  void done(const char* phase) {
    auto now = std::chrono::steady_clock::now();
    spdlog::debug("phase {} took {:.1f} ms", phase, std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Starts observing the Targets (if they are valid and pass their provider's checks).
void startPrefetch(const std::vector<Target>& targets, const ProviderRegistry& providers, Prefetch* prefetch,
                   bool invalid) {
  if (!prefetch || invalid) return;
  Diagnostics scratch;
  for (const auto& t : targets)
    if (Provider* p = providers.find(t.provider)) p->checkTarget(t, scratch);
  if (!scratch.hasErrors()) prefetch->start(targets);
}

// The front end after parsing: schema validation, the builder, the digest and lint. With a prefetch, the
// Targets are validated first and observing them starts while the rest is validated.
DesiredState front(std::vector<Document> docs, const std::vector<ManifestSource>& sources, const std::string& inlineText,
                   const ProviderRegistry& providers, Diagnostics& diags, PhaseTimer& timer, Prefetch* prefetch) {
  std::vector<Document> valid;
  if (prefetch) {
    std::vector<Document> targetDocs, others;
    for (auto& d : docs) (d.body.value("kind", Json()) == "Target" ? targetDocs : others).push_back(std::move(d));
    valid = validateAll(std::move(targetDocs), diags);
    Diagnostics scratch;
    DesiredState early = buildDesiredState(valid, scratch);
    startPrefetch(early.targets, providers, prefetch, diags.hasErrors() || scratch.hasErrors());
    for (auto& d : validateAll(std::move(others), diags)) valid.push_back(std::move(d));
  } else {
    valid = validateAll(std::move(docs), diags);
  }
  timer.done("schema");
  DesiredState desired = buildDesiredState(valid, diags);
  desired.digest = digestOf(sources, desired.files, inlineText);
  if (!inlineText.empty()) desired.files.clear();
  timer.done("build");
  lint(desired, diags);
  return desired;
}

}  // namespace

void checkWithProviders(DesiredState& desired, const ProviderRegistry& providers, Diagnostics& diags) {
  for (const auto& t : desired.targets) {
    if (auto why = state::targetNameProblem(t.name))
      diags.error(t.loc, "Target " + t.name + ": the state store cannot record it: " + *why, "target-name");
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
  using Ms = std::chrono::duration<double, std::milli>;
  const auto started = std::chrono::steady_clock::now();
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
  const auto perResourceDone = std::chrono::steady_clock::now();
  for (const auto& t : desired.targets) {
    Provider* p = providers.find(t.provider);
    if (!p) continue;
    std::vector<const Resource*> mine;
    for (const auto& r : desired.resources)
      if (r.addr.target == t.name) mine.push_back(&r);
    p->checkTogether(t, mine, diags);
  }
  spdlog::debug("check: resources {:.1f} ms, together {:.1f} ms", Ms(perResourceDone - started).count(),
                Ms(std::chrono::steady_clock::now() - perResourceDone).count());
}

DesiredState loadDesired(const std::vector<std::string>& paths, const ProviderRegistry& providers,
                         Diagnostics& diags, Prefetch* prefetch) {
  PhaseTimer timer;
  auto sources = readManifestSources(paths, diags);
  // Unchanged manifests (same bytes, same binary) reuse the cached front end; see frontcache.h.
  const std::string key = diags.hasErrors() ? "" : frontcache::keyOf(sources);
  DesiredState desired;
  bool prefetching = false;
  auto hit = frontcache::load(key, [&](const std::vector<Target>& targets) {
    startPrefetch(targets, providers, prefetch, false);  // observe while the resources are decoded
    prefetching = true;
  });
  if (hit) {
    for (auto& w : hit->warnings) diags.add(std::move(w));
    desired = std::move(hit->desired);
    spdlog::debug("front-end cache hit: {}", key);
    timer.done("load (front end from the cache)");
  } else {
    // (A damaged entry may have started the prefetch: Prefetch::take re-checks each target's spec.)
    if (prefetching) prefetch = nullptr;
    Diagnostics frontDiags;
    auto docs = parseManifestSources(sources, frontDiags);
    timer.done("load");
    desired = front(std::move(docs), sources, "", providers, frontDiags, timer, prefetch);
    if (!frontDiags.hasErrors() && !diags.hasErrors()) frontcache::store(key, desired, frontDiags.items());
    spdlog::debug("front-end cache {}: {}", key.empty() ? "off" : "miss", key.empty() ? frontcache::directory() : key);
    diags.append(frontDiags);
  }
  checkWithProviders(desired, providers, diags);
  timer.done("lint+check");
  return desired;
}

DesiredState loadDesiredText(const std::string& text, const std::string& name, const ProviderRegistry& providers,
                             Diagnostics& diags) {
  PhaseTimer timer;
  auto docs = loadManifestText(text, name, diags);
  timer.done("load");
  DesiredState desired = front(std::move(docs), {}, text, providers, diags, timer, nullptr);
  checkWithProviders(desired, providers, diags);
  timer.done("lint+check");
  return desired;
}

Result<LiveTarget> connectAndObserve(const Target& target, const ProviderRegistry& providers, Deadline deadline) {
  LiveTarget lt;
  lt.target = target;
  lt.provider = providers.find(target.provider);
  if (!lt.provider) return err("target " + target.name + ": unknown provider '" + target.provider + "'");
  auto session = lt.provider->connect(target, deadline);
  if (!session) return err("target " + target.name + ": " + session.error().message);
  lt.session = std::move(*session);
  auto observed = lt.session->observe();
  if (!observed) return err("target " + target.name + ": observe: " + observed.error().message);
  lt.observed = std::move(*observed);
  return lt;
}

std::map<Address, state::OwnedObject> ownedOf(const state::TargetState& st) { return st.owned; }

Result<Plan> planAgainst(const DesiredState& desired, const std::set<std::string>& onlyTargets,
                         const std::map<std::string, TargetSnapshot>& snapshots, const ProviderRegistry& providers,
                         Diagnostics& diags, const std::vector<UnreachableTarget>& unreachable, bool fingerprints) {
  Plan plan;
  plan.manifestsDigest = desired.digest;
  plan.manifestFiles = desired.files;
  plan.unreachable = unreachable;
  std::set<std::string> skip;
  for (const auto& u : unreachable) skip.insert(u.target);
  for (const auto& name : onlyTargets)
    if (!desired.findTarget(name)) return err("--target " + name + ": no such Target in the manifests");
  for (const auto& t : desired.targets) {
    if ((!onlyTargets.empty() && !onlyTargets.count(t.name)) || skip.count(t.name)) continue;
    auto snap = snapshots.find(t.name);
    if (snap == snapshots.end()) return err("target " + t.name + ": no observation");
    const Provider* provider = providers.find(t.provider);
    if (!provider) return err("target " + t.name + ": unknown provider '" + t.provider + "'");
    TargetView view;
    view.target = &t;
    view.provider = provider;
    view.observed = &snap->second.observed;
    view.owned = &snap->second.owned;
    view.fingerprints = fingerprints;
    std::vector<const Resource*> mine;
    for (const auto& r : desired.resources)
      if (r.addr.target == t.name) mine.push_back(&r);
    plan.targets.push_back(t);
    planTarget(mine, view, plan, diags);
  }
  if (Status st = orderChanges(plan.changes); !st) return st.error();
  for (const auto& d : diags.items())
    if (d.severity == Severity::Warning) plan.warnings.push_back(d);
  return plan;
}

std::optional<std::string> targetBusy(state::Store& store, const std::string& target, std::chrono::milliseconds wait) {
  const auto deadline = SteadyClock::now() + wait;
  for (;;) {
    auto holder = store.lockHolder(target);
    if (!holder) return "cannot read its lock: " + holder.error().message;
    if (!holder->has_value() || (**holder).pid == static_cast<int64_t>(::getpid())) break;
    if (SteadyClock::now() >= deadline) {
      const state::LockInfo& h = **holder;
      return "a " + h.operation + " is running on it (lock " + h.id + " held by " + h.owner + ", pid " +
             std::to_string(h.pid) + ", since " + h.created + "); wait for it (--lock-timeout) and plan again";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto j = store.journal(target);
  if (!j) return "cannot read its journal: " + j.error().message;
  if (j->has_value()) {
    const state::Journal& jr = **j;
    return "an earlier " + jr.operation + " (journal " + jr.id + ", pid " + std::to_string(jr.pid) + ", started " +
           jr.started + ", status " + state::journalStatusName(jr.status) +
           ") did not finish: its objects may be half-applied. Run 'vnetplan rollback' first";
  }
  return std::nullopt;
}

struct Prefetch::Job {
  Target target;
  Fetched result;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

Prefetch::Prefetch(const ProviderRegistry& providers, state::Store& store, std::set<std::string> onlyTargets,
                   FanoutOptions fanout)
    : providers_(providers), store_(store), only_(std::move(onlyTargets)), fanout_(fanout) {}

Prefetch::~Prefetch() {
  if (pool_.joinable()) pool_.join();
}

void Prefetch::start(const std::vector<Target>& targets) {
  for (const auto& t : targets) {
    if (!only_.empty() && !only_.count(t.name)) continue;
    auto job = std::make_unique<Job>();
    job->target = t;
    jobs_.push_back(std::move(job));
  }
  pool_ = std::thread([this] {
    std::atomic<size_t> finished{0};
    const size_t total = jobs_.size();
    forEachParallel(total, fanout_.parallelism, [&](size_t i) {
      Job& j = *jobs_[i];
      Result<LiveTarget> live = err("");
      Result<state::TargetState> st = err("");
      if (auto busy = targetBusy(store_, j.target.name, fanout_.lockTimeout)) {
        live = Error{*busy};
        st = store_.load(j.target.name);
      } else {
        // Only once no apply holds the target (targetBusy may have waited for one): state and live must both be
        // read after it. The state is read while the target is observed (it is as big as the observation).
        auto stateLoad = std::async(std::launch::async, [&] { return store_.load(j.target.name); });
        live = connectAndObserve(j.target, providers_, SteadyClock::now() + fanout_.targetTimeout);
        st = stateLoad.get();
      }
      size_t n = ++finished;
      if (fanout_.progress) fanout_.progress->targets(n, total, j.target.name);
      {
        std::lock_guard<std::mutex> lock(j.mu);
        j.result.live = std::move(live);
        j.result.state = std::move(st);
        j.done = true;
      }
      j.cv.notify_all();
    });
  });
}

std::optional<Prefetch::Fetched> Prefetch::take(const Target& target) {
  for (auto& j : jobs_) {
    if (j->target.name != target.name) continue;
    std::unique_lock<std::mutex> lock(j->mu);
    j->cv.wait(lock, [&] { return j->done; });
    if (toJson(j->target) != toJson(target)) return std::nullopt;
    return std::move(j->result);
  }
  return std::nullopt;
}

// A Target removed from the manifests while vnetplan still owns objects on it: without its connection spec
// nothing can be planned there, so say so instead of leaving the objects behind silently.
void warnAboutForgottenTargets(const DesiredState& desired, const std::set<std::string>& onlyTargets,
                               state::Store& store, Diagnostics& diags) {
  if (!onlyTargets.empty() || desired.files.empty()) return;
  auto names = store.targets();
  if (!names) return;
  for (const auto& name : *names) {
    if (desired.findTarget(name)) continue;
    auto st = store.load(name);
    if (!st || st->owned.empty()) continue;
    diags.warning(SourceLoc{desired.files.front(), 0, 0},
                  "Target " + name + " is not in the manifests, but vnetplan still owns " +
                      std::to_string(st->owned.size()) + " object(s) there (state: 'vnetplan state show " + name +
                      "'); declare the Target again with no resources to delete them",
                  "forgotten-target");
  }
}

Result<Plan> planDesired(const DesiredState& desired, const std::set<std::string>& onlyTargets,
                         state::Store& store, const ProviderRegistry& providers, Diagnostics& diags,
                         Prefetch* prefetch, const FanoutOptions& fanout, bool fingerprints) {
  PhaseTimer timer;
  // Without a prefetch already running, observe every target now, on the bounded pool.
  std::optional<Prefetch> own;
  if (!prefetch) {
    own.emplace(providers, store, onlyTargets, fanout);
    own->start(desired.targets);
    prefetch = &*own;
  }
  std::map<std::string, TargetSnapshot> snapshots;
  std::vector<UnreachableTarget> unreachable;
  for (const auto& t : desired.targets) {
    if (!onlyTargets.empty() && !onlyTargets.count(t.name)) continue;
    std::optional<Prefetch::Fetched> fetched = prefetch->take(t);
    auto live = fetched ? std::move(fetched->live)
                        : connectAndObserve(t, providers, SteadyClock::now() + fanout.targetTimeout);
    if (!live) {
      // One unreachable (or busy) target is reported; the others are still planned.
      std::string why = live.error().message;
      if (const std::string prefix = "target " + t.name + ": "; why.rfind(prefix, 0) == 0)
        why = "it could not be reached: " + why.substr(prefix.size());
      unreachable.push_back(UnreachableTarget{t.name, why});
      continue;
    }
    auto st = fetched ? std::move(fetched->state) : store.load(t.name);
    if (!st) return err("state for target " + t.name + ": " + st.error().message);
    snapshots[t.name] = TargetSnapshot{std::move(live->observed), ownedOf(*st)};
  }
  timer.done("observe + state");
  auto plan = planAgainst(desired, onlyTargets, snapshots, providers, diags, unreachable, fingerprints);
  timer.done("diff");
  warnAboutForgottenTargets(desired, onlyTargets, store, diags);
  retainUntilExit(std::move(snapshots));
  return plan;
}

}  // namespace vnetplan
