#include "providers/vpc/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <thread>

#include "model/references.h"

namespace vnetplan::vpc {

VpcSession::VpcSession(std::shared_ptr<HttpClient> http, std::shared_ptr<TokenSource> auth,
                       ApplyCtx::Settings settings, std::set<std::string> extensions,
                       std::optional<Deadline> firstObserveBy, int parallelism)
    : api_(std::move(http), std::move(auth)),
      settings_(std::move(settings)),
      extensions_(std::move(extensions)),
      firstObserveBy_(firstObserveBy),
      parallelism_(std::max(1, parallelism)) {}

namespace {

// Runs fns at once on threads of their own (a handful of list calls).
void together(std::vector<std::function<void()>> fns) {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < fns.size(); ++i) threads.emplace_back(fns[i]);
  if (!fns.empty()) fns[0]();
  for (auto& t : threads) t.join();
}

}  // namespace

Result<std::unique_ptr<Snapshot>> VpcSession::read(std::optional<Deadline> deadline) {
  auto snap = std::make_unique<Snapshot>();
  snap->target = settings_.target;
  snap->projectId = settings_.projectId;
  const std::string mine = "tags=" + urlEncode(kOwnerTag + settings_.target) +
                           (settings_.projectId.empty() ? "" : "&project_id=" + urlEncode(settings_.projectId));
  std::optional<Error> failed;
  std::mutex mu;
  auto fetch = [&](const char* collection, std::vector<Json>& into, const std::string& query) {
    return [&, collection, query] {
      auto l = api_.list(collection, query, deadline);
      std::lock_guard<std::mutex> lock(mu);
      if (!l) {
        if (!failed) failed = l.error();
      } else {
        into = std::move(*l);
      }
    };
  };
  together({fetch("routers", snap->routers, mine), fetch("networks", snap->networks, mine),
            fetch("subnets", snap->subnets, mine), fetch("security-groups", snap->groups, mine)});
  if (failed) return *failed;

  // The interfaces of these routers (chunks keep the URL short), and external network names for gateways.
  std::vector<std::string> routerIds;
  bool gateways = false;
  for (const auto& r : snap->routers) {
    if (!taggedAddress(r, settings_.target)) continue;
    routerIds.push_back(jsonString(r, "id"));
    if (r.contains("external_gateway_info") && r["external_gateway_info"].is_object()) gateways = true;
  }
  std::vector<std::vector<Json>> chunks((routerIds.size() + 39) / 40);
  std::vector<std::function<void()>> more;
  for (size_t c = 0; c < chunks.size(); ++c) {
    std::string q = "device_owner=network%3Arouter_interface";
    for (size_t i = c * 40; i < std::min(routerIds.size(), (c + 1) * 40); ++i) q += "&device_id=" + urlEncode(routerIds[i]);
    more.push_back(fetch("ports", chunks[c], q));
  }
  if (gateways) more.push_back(fetch("networks", snap->externals, "router%3Aexternal=true&fields=id&fields=name"));
  together(std::move(more));
  if (failed) return *failed;
  for (auto& c : chunks)
    for (auto& p : c) snap->interfacePorts.push_back(std::move(p));
  snap->index();
  return snap;
}

Result<Observation> VpcSession::observe() {
  std::optional<Deadline> deadline = firstObserveBy_;
  firstObserveBy_.reset();  // later observes (verify, rollback) are bounded per request only
  try {
    auto snap = read(deadline);
    if (!snap) return err("vpc: " + snap.error().message);
    Observation obs;
    vpcKinds().observe(**snap, obs);
    snap_ = std::move(*snap);
    ctx_ = std::make_unique<ApplyCtx>(api_, *snap_, settings_);
    std::lock_guard<std::mutex> lock(doneMu_);
    doneSteps_.clear();
    return obs;
  } catch (const std::exception& e) {
    // A reply of the wrong shape that got past the checks: an error, never a crash.
    return err(std::string("vpc: neutron ") + api_.endpoint() + " answered with unexpected data: " + e.what());
  }
}

Status VpcSession::apply(const Step& step) {
  BatchResult r = applyBatch({step}, nullptr);
  return r.status;
}

namespace {

std::string stepKey(const Step& s) {
  return std::string(stepActionName(s.action)) + " " + s.addr.str() + " " + s.before.toJson().dump() + " " +
         s.after.toJson().dump();
}

bool refersTo(const Step& from, const Address& to) {
  const Attrs& a = from.action == StepAction::Delete ? from.before : from.after;
  auto refs = referencesOf(from.addr, a);
  return std::find(refs.begin(), refs.end(), to) != refs.end();
}

// True if step `later` must wait for step `earlier` (earlier comes first in the plan's order).
bool mustFollow(const Step& earlier, const Step& later) {
  if (earlier.addr == later.addr) return true;
  // Deletes first: a name, VLAN or address range freed by one may be taken by a create.
  if (earlier.action == StepAction::Delete && later.action != StepAction::Delete) return true;
  if (later.action != StepAction::Delete && refersTo(later, earlier.addr)) return true;
  if (earlier.action == StepAction::Delete && later.action == StepAction::Delete && refersTo(earlier, later.addr))
    return true;
  if (earlier.addr.kind != later.addr.kind) {
    auto a = routersTouched(earlier), b = routersTouched(later);
    for (const auto& r : a)
      if (b.count(r)) return true;
  }
  return false;
}

}  // namespace

Status VpcSession::runStep(const Step& step) {
  const std::string key = stepKey(step);
  {
    std::lock_guard<std::mutex> lock(doneMu_);
    if (doneSteps_.count(key)) return {};  // done already in this session (a batch resumed after a failure)
  }
  Status s;
  try {
    s = vpcKinds().apply(*ctx_, step);
  } catch (const std::exception& e) {
    s = err(std::string("neutron ") + api_.endpoint() + " answered with unexpected data: " + e.what());
  }
  if (s) {
    std::lock_guard<std::mutex> lock(doneMu_);
    doneSteps_.insert(key);
  }
  return s;
}

TargetSession::BatchResult VpcSession::applyBatch(const std::vector<Step>& steps,
                                                  const std::function<void(size_t)>& done) {
  const long failAt = failAt_;
  failAt_ = -1;
  if (steps.empty()) return {};
  if (!ctx_) {
    if (auto obs = observe(); !obs) return {obs.error(), 0};
  }
  const size_t n = steps.size();
  std::set<std::string> deletedVpcs;
  for (const auto& s : steps)
    if (s.addr.kind == Kind::Vpc && s.action == StepAction::Delete) deletedVpcs.insert(s.addr.name);
  ctx_->setVpcsBeingDeleted(std::move(deletedVpcs));
  std::vector<std::vector<size_t>> next(n);
  std::vector<size_t> waiting(n, 0);
  for (size_t j = 0; j < n; ++j)
    for (size_t i = 0; i < j; ++i)
      if (mustFollow(steps[i], steps[j])) {
        next[i].push_back(j);
        ++waiting[j];
      }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<size_t> ready;
  std::vector<int> state(n, 0);  // 0 waiting, 1 running, 2 done, 3 failed
  std::vector<Status> results(n);
  size_t running = 0, finished = 0;
  bool stop = false;
  for (size_t i = 0; i < n; ++i)
    if (waiting[i] == 0) ready.push_back(i);
  if (ready.empty()) return {err("no step of the batch can start (a dependency cycle)"), 0};

  const size_t workers = std::min<size_t>(n, static_cast<size_t>(parallelism_));
  std::vector<std::thread> pool;
  std::deque<size_t> completed;  // for the caller's thread: done() is called there, in order
  auto worker = [&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stop || !ready.empty() || finished == n; });
      if (stop || ready.empty()) {
        if (stop || finished == n) return;
        continue;
      }
      size_t i = ready.front();
      ready.pop_front();
      state[i] = 1;
      ++running;
      lock.unlock();
      Status st = static_cast<long>(i) == failAt
                      ? Status(err("injected failure at step " + std::to_string(i + 1) + " of the batch"))
                      : runStep(steps[i]);
      lock.lock();
      --running;
      ++finished;
      results[i] = st;
      state[i] = st ? 2 : 3;
      completed.push_back(i);
      if (st) {
        for (size_t j : next[i])
          if (--waiting[j] == 0) ready.push_back(j);
      } else {
        stop = true;  // no new step starts; those running finish
      }
      // Nothing left that could ever become ready: the rest waits on a failed step.
      if (!stop && ready.empty() && running == 0 && finished < n) stop = true;
      cv.notify_all();
    }
  };
  for (size_t w = 0; w < workers; ++w) pool.emplace_back(worker);

  // This thread reports progress: done(i) for the steps known done, in plan order (the journal counts a prefix).
  size_t prefix = 0;
  {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return !completed.empty() || (stop && running == 0) || finished == n; });
      completed.clear();
      while (prefix < n && state[prefix] == 2) {
        size_t i = prefix++;
        if (done) {
          lock.unlock();
          done(i);
          lock.lock();
        }
      }
      if (finished == n || (stop && running == 0)) break;
    }
    stop = true;
    cv.notify_all();
  }
  for (auto& t : pool) t.join();
  while (prefix < n && state[prefix] == 2) {
    if (done) done(prefix);
    ++prefix;
  }
  for (size_t i = 0; i < n; ++i)
    if (state[i] == 3) {
      // Steps after it that ran anyway are done; the engine rolls back from what it observes, not from a count.
      return {Status(err(results[i].error().message)), i};
    }
  if (prefix < n) return {err("a step of the batch never became ready (a dependency cycle)"), prefix};
  return {};
}

}  // namespace vnetplan::vpc
