// A provider kept entirely in memory, for fast engine tests that need no root and no real peer: the applier,
// journal recovery, confirm and rollback run against it with failures and latencies injected exactly where a
// test wants them (Terraform's provider mock). It is built on the same kind table as the real providers, so it
// goes through the same plan-time checks, normalization and descriptions.
//
//   FakeWorld world;                          // the live objects of every fake target, shared by sessions
//   ProviderRegistry reg = fakeRegistry(world, "esxi");   // registered under a name the schema knows
//   world.failOn("hv1/Port/p2", StepAction::Create);      // the next create of p2 fails
//   world.unreachable.insert("hv2");                      // connecting to hv2 fails
//
// Objects accept any attributes. Every kind the schema has is managed (Switch, PortGroup, Port, ...), Ports of
// every type.
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "reconciler/provider.h"

namespace vnptest {

using namespace vnetplan;

struct FakeWorld {
  std::mutex mu;
  // target -> live objects
  std::map<std::string, std::map<Address, ObservedObject>> live;
  // How sessions apply: step by step, in batches of `batchSize`, or all at once (atomic).
  TargetSession::Mode mode = TargetSession::Mode::StepByStep;
  size_t batchSize = 3;
  // Objects get a provider id and a revision (as Neutron's uuid and revision_number): an update or delete whose
  // step carries another revision than the live one is refused as a concurrent change (If-Match).
  bool identities = false;
  int nextId = 1;
  void bumpRevision(const std::string& addr);  // someone else changed it

  // ---- faults
  std::set<std::string> unreachable;  // connect fails ("connection refused")
  std::map<std::string, std::chrono::milliseconds> connectDelay;  // connect takes this long
  std::chrono::milliseconds stepDelay{0};                        // every step takes this long
  struct Fault {
    Address addr;
    StepAction action;
    int remaining = 1;     // how many more times it fails
    std::string message = "injected failure";
  };
  std::vector<Fault> faults;
  void failOn(const std::string& addr, StepAction action, int times = 1, std::string message = "injected failure");
  // observe() fails after this many more successful observes (-1: never).
  int observeFailsAfter = -1;
  // Steps of these kinds are deferred until the session's flush() (as a linux target's nftables changes): they
  // change nothing live before it. flushFails > 0: that many flushes fail, committing none of their work.
  std::set<Kind> deferredKinds;
  int flushFails = 0;
  // A hook called before each step is applied (e.g. to kill the process at a chosen point).
  std::function<void(const Step&)> beforeStep;

  // ---- what happened
  std::vector<std::string> log;  // "create hv1/Port/p1", "connect hv1", ...
  int activeConnects = 0, maxActiveConnects = 0;  // connects in progress at once (fan-out width)
  // The secret each target's connect resolved (to prove secrets reach providers and nothing else).
  std::map<std::string, std::string> secretsSeen;

  // Test helpers.
  void put(const std::string& addr, Json attrs);
  std::optional<Attrs> get(const std::string& addr);
  size_t count(const std::string& entryPrefix);  // log entries starting with the prefix
};

// A provider named `name` over `world`.
std::unique_ptr<Provider> makeFakeProvider(FakeWorld& world, std::string name);
// A registry holding only that provider.
ProviderRegistry fakeRegistry(FakeWorld& world, const std::string& name);

}  // namespace vnptest
