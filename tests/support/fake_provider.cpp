#include "tests/support/fake_provider.h"

#include <thread>

#include "model/secret.h"
#include "reconciler/kind_table.h"

namespace vnptest {

void FakeWorld::failOn(const std::string& addr, StepAction action, int times, std::string message) {
  std::lock_guard<std::mutex> lock(mu);
  faults.push_back(Fault{*Address::parse(addr), action, times, std::move(message)});
}

void FakeWorld::put(const std::string& addr, Json attrs) {
  std::lock_guard<std::mutex> lock(mu);
  Address a = *Address::parse(addr);
  live[a.target][a] = ObservedObject{a, Attrs::fromJson(attrs), false, {}};
}

std::optional<Attrs> FakeWorld::get(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu);
  Address a = *Address::parse(addr);
  auto& objs = live[a.target];
  auto it = objs.find(a);
  if (it == objs.end()) return std::nullopt;
  return it->second.attrs;
}

void FakeWorld::bumpRevision(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu);
  Address a = *Address::parse(addr);
  auto& obj = live[a.target][a];
  obj.identity.revision = std::to_string(std::stoi(obj.identity.revision.empty() ? "0" : obj.identity.revision) + 1);
}

size_t FakeWorld::count(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(mu);
  size_t n = 0;
  for (const auto& l : log)
    if (l.rfind(prefix, 0) == 0) ++n;
  return n;
}

namespace {

// What observe and apply both work on: the world and the session's target.
struct FakeContext {
  FakeWorld& world;
  std::string target;
};

Status applyOne(FakeContext& ctx, const Step& step) {
  FakeWorld& w = ctx.world;
  if (w.stepDelay.count() > 0) std::this_thread::sleep_for(w.stepDelay);
  if (w.beforeStep) w.beforeStep(step);
  std::lock_guard<std::mutex> lock(w.mu);
  for (auto& f : w.faults)
    if (f.remaining > 0 && f.addr == step.addr && f.action == step.action) {
      --f.remaining;
      w.log.push_back("fail " + std::string(stepActionName(step.action)) + " " + step.addr.str());
      return err(f.message);
    }
  auto& objs = w.live[ctx.target];
  auto it = objs.find(step.addr);
  if (w.identities && it != objs.end() && step.action != StepAction::Create && !step.identity.revision.empty() &&
      step.identity.revision != it->second.identity.revision)
    return err("412 Precondition Failed: revision " + step.identity.revision + " is not the live revision " +
               it->second.identity.revision + " (changed concurrently)");
  switch (step.action) {
    case StepAction::Create:
      if (it != objs.end()) return err(step.addr.str() + " already exists");
      objs[step.addr] = ObservedObject{step.addr, step.after, true, {}};
      if (w.identities) objs[step.addr].identity = ProviderIdentity{"id-" + std::to_string(w.nextId++), "1"};
      break;
    case StepAction::Update:
      if (it == objs.end()) return err(step.addr.str() + " does not exist");
      if (w.identities)
        it->second.identity.revision = std::to_string(std::stoi(it->second.identity.revision) + 1);
      for (const auto& path : step.changed) {
        if (const Json* v = step.after.find(path); v && !v->is_null())
          it->second.attrs.set(path, *v);
        else
          it->second.attrs.erase(path);
      }
      break;
    case StepAction::Delete:
      if (it == objs.end()) return err(step.addr.str() + " does not exist");
      objs.erase(it);
      break;
  }
  w.log.push_back(std::string(stepActionName(step.action)) + " " + step.addr.str());
  return {};
}

Status fakeCreate(FakeContext& ctx, const Step& s) { return applyOne(ctx, s); }
Status fakeUpdate(FakeContext& ctx, const Step& s) { return applyOne(ctx, s); }
Status fakeRemove(FakeContext& ctx, const Step& s) { return applyOne(ctx, s); }

using Row = KindHooks<FakeContext, FakeContext>;

KindTraits traitsFor(Kind k) {
  KindTraits t;
  t.kind = k;
  t.replaceOn = {"type"};
  t.disruptiveOn = {"mtu"};
  t.unorderedLists = {"addresses"};
  t.verify = VerifyPolicy{2, std::chrono::milliseconds(1)};
  return t;
}

// One row per kind, each taking any field.
struct Rows {
  std::vector<KindTraits> traits;
  std::vector<Row> rows;
  std::vector<const Row*> pointers;
  Rows() {
    traits.reserve(allKinds().size());
    rows.reserve(allKinds().size());
    for (Kind k : allKinds()) {
      if (k == Kind::Target) continue;
      traits.push_back(traitsFor(k));
      Row r;
      r.kind = k;
      r.label = "object";
      r.traits = &traits.back();
      r.fields = {{""}};  // matched below: everything
      r.create = fakeCreate;
      r.update = fakeUpdate;
      r.remove = fakeRemove;
      rows.push_back(std::move(r));
    }
    for (const auto& r : rows) pointers.push_back(&r);
  }
};

const Rows& rows() {
  static const Rows r;
  return r;
}

const std::vector<FieldRule>& anyField() {
  static const std::vector<FieldRule> rules{{"", nullptr}};
  return rules;
}

class FakeSession final : public TargetSession {
 public:
  FakeSession(FakeWorld& world, std::string target, const KindTable<FakeContext, FakeContext>& table)
      : ctx_{world, std::move(target)}, table_(table) {}

  Result<Observation> observe() override {
    std::lock_guard<std::mutex> lock(ctx_.world.mu);
    if (ctx_.world.observeFailsAfter == 0) return err("observe: the peer went away");
    if (ctx_.world.observeFailsAfter > 0) --ctx_.world.observeFailsAfter;
    Observation obs;
    for (const auto& [addr, obj] : ctx_.world.live[ctx_.target]) obs.objects[addr] = obj;
    return obs;
  }

  Mode mode() const override { return ctx_.world.mode; }
  size_t batchSize() const override { return ctx_.world.batchSize; }

  Status apply(const Step& step) override {
    if (ctx_.world.mode == Mode::StepByStep && ctx_.world.deferredKinds.count(step.addr.kind)) {
      std::lock_guard<std::mutex> lock(ctx_.world.mu);
      ctx_.world.log.push_back("defer " + step.addr.str());
      pending_.push_back(step);
      return {};
    }
    return table_.apply(ctx_, step);
  }

  Status flush() override {
    std::vector<Step> pending = std::move(pending_);
    pending_.clear();
    {
      std::lock_guard<std::mutex> lock(ctx_.world.mu);
      ctx_.world.log.push_back("flush " + ctx_.target + " " + std::to_string(pending.size()));
      if (ctx_.world.flushFails > 0) {
        --ctx_.world.flushFails;
        return err("injected flush failure");
      }
    }
    // All or nothing, as an nftables batch.
    std::map<Address, ObservedObject> saved;
    {
      std::lock_guard<std::mutex> lock(ctx_.world.mu);
      saved = ctx_.world.live[ctx_.target];
    }
    for (const auto& step : pending)
      if (Status s = table_.apply(ctx_, step); !s) {
        std::lock_guard<std::mutex> lock(ctx_.world.mu);
        ctx_.world.live[ctx_.target] = saved;
        return s;
      }
    return {};
  }

  void discard() override {
    std::lock_guard<std::mutex> lock(ctx_.world.mu);
    ctx_.world.log.push_back("discard " + std::to_string(pending_.size()));
    pending_.clear();
  }

  BatchResult applyBatch(const std::vector<Step>& steps, const std::function<void(size_t)>& done) override {
    if (mode() != Mode::Atomic) {
      for (size_t i = 0; i < steps.size(); ++i) {
        Status st = static_cast<long>(i) == failAt_ ? Status(err("injected failure")) : apply(steps[i]);
        if (!st) {
          failAt_ = -1;
          return {st, i};
        }
        if (done) done(i);
      }
      failAt_ = -1;
      return {};
    }
    // Atomic: apply to a copy, publish it only if every step succeeded.
    std::map<Address, ObservedObject> saved;
    {
      std::lock_guard<std::mutex> lock(ctx_.world.mu);
      saved = ctx_.world.live[ctx_.target];
    }
    for (size_t i = 0; i < steps.size(); ++i) {
      Status st = static_cast<long>(i) == failAt_ ? Status(err("injected failure")) : apply(steps[i]);
      if (!st) {
        failAt_ = -1;
        std::lock_guard<std::mutex> lock(ctx_.world.mu);
        ctx_.world.live[ctx_.target] = saved;
        return {st, i, true};
      }
    }
    failAt_ = -1;
    if (done)
      for (size_t i = 0; i < steps.size(); ++i) done(i);
    return {};
  }

  void injectFailure(long index) override { failAt_ = index; }

 private:
  FakeContext ctx_;
  const KindTable<FakeContext, FakeContext>& table_;
  long failAt_ = -1;
  std::vector<Step> pending_;  // deferred steps (deferredKinds), committed by flush()
};

class FakeProvider final : public TableProvider<FakeContext, FakeContext> {
 public:
  FakeProvider(FakeWorld& world, std::string name)
      : TableProvider(KindTable<FakeContext, FakeContext>(rows().pointers)), world_(world), name_(std::move(name)) {}

  std::string_view name() const override { return name_; }
  void checkTarget(const Target&, Diagnostics&) const override {}

  Result<std::unique_ptr<TargetSession>> connect(const Target& target, Deadline deadline) override {
    std::chrono::milliseconds delay{0};
    struct Active {
      FakeWorld& w;
      explicit Active(FakeWorld& world) : w(world) {
        std::lock_guard<std::mutex> lock(w.mu);
        w.maxActiveConnects = std::max(w.maxActiveConnects, ++w.activeConnects);
      }
      ~Active() {
        std::lock_guard<std::mutex> lock(w.mu);
        --w.activeConnects;
      }
    } active(world_);
    {
      std::lock_guard<std::mutex> lock(world_.mu);
      world_.log.push_back("connect " + target.name);
      if (world_.unreachable.count(target.name)) return err("connection refused");
      if (auto it = world_.connectDelay.find(target.name); it != world_.connectDelay.end()) delay = it->second;
    }
    if (delay.count() > 0) {
      // A slow peer: answers after `delay`, or not before the deadline.
      if (SteadyClock::now() + delay > deadline) {
        std::this_thread::sleep_until(deadline);
        return err("no answer before the deadline");
      }
      std::this_thread::sleep_for(delay);
    }
    // A connection secret reaches the provider (and nothing else).
    if (auto ref = secretAt(target.spec, "identityPassphrase")) {
      auto value = resolveSecret(*ref);
      if (!value) return value.error();
      std::lock_guard<std::mutex> lock(world_.mu);
      world_.secretsSeen[target.name] = *value;
    }
    return std::unique_ptr<TargetSession>(std::make_unique<FakeSession>(world_, target.name, table()));
  }

 protected:
  const std::vector<FieldRule>& commonFields(Kind) const override { return anyField(); }
  void unsupportedField(const FieldCheck&, const Row*) const override {}

 private:
  FakeWorld& world_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Provider> makeFakeProvider(FakeWorld& world, std::string name) {
  return std::make_unique<FakeProvider>(world, std::move(name));
}

ProviderRegistry fakeRegistry(FakeWorld& world, const std::string& name) {
  ProviderRegistry r;
  r.add(makeFakeProvider(world, name));
  return r;
}

}  // namespace vnptest
