// base/parallel.h: every index exactly once, on several threads when asked, and the first exception rethrown.
// And the planner's use of it: a target large enough to be compared on every core plans exactly what the same
// objects plan when compared on one thread (split into targets below the threshold).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "base/parallel.h"
#include "cli/providers.h"
#include "model/codec.h"
#include "reconciler/pipeline.h"
#include "reconciler/render.h"
#include "reconciler/snapshot.h"

using namespace vnetplan;

TEST(ParallelChunks, EveryIndexExactlyOnceOnSeveralThreads) {
  for (size_t n : {0u, 1u, 31u, 32u, 33u, 1000u, 4097u}) {
    std::vector<std::atomic<int>> hits(n);
    std::mutex mu;
    std::set<std::thread::id> threads;
    forEachParallelChunks(n, 4, [&](size_t i) {
      hits[i]++;
      std::lock_guard<std::mutex> lock(mu);
      threads.insert(std::this_thread::get_id());
    });
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
    // Up to 32 items are one block: one thread, the caller.
    if (n == 0) {
      EXPECT_TRUE(threads.empty());
    } else if (n <= 32) {
      ASSERT_EQ(threads.size(), 1u) << n;
      EXPECT_EQ(*threads.begin(), std::this_thread::get_id());
    } else {
      EXPECT_LE(threads.size(), 4u) << n;
    }
  }
}

TEST(ParallelChunks, OneWorkerRunsInOrderOnTheCaller) {
  std::vector<size_t> order;
  const auto caller = std::this_thread::get_id();
  forEachParallelChunks(200, 1, [&](size_t i) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    order.push_back(i);
  });
  ASSERT_EQ(order.size(), 200u);
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], i);
}

TEST(ParallelChunks, TheFirstExceptionIsRethrownAfterEveryThreadStopped) {
  std::atomic<int> running{0}, ran{0};
  try {
    forEachParallelChunks(10000, 4, [&](size_t i) {
      running++;
      ran++;
      if (i == 100) {
        running--;
        throw std::runtime_error("item 100");
      }
      running--;
    });
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "item 100");
  }
  EXPECT_EQ(running.load(), 0);  // nothing still running once it returned
  EXPECT_LT(ran.load(), 10000);  // the blocks not started were skipped
}

TEST(ParallelChunks, WorkersFollowTheThreshold) {
  EXPECT_EQ(parallelWorkers(10, 256), 1);
  EXPECT_EQ(parallelWorkers(255, 256), 1);
  EXPECT_GE(parallelWorkers(256, 256), 1);
  EXPECT_LE(parallelWorkers(100000, 256), 8);
}

namespace {

// `count` switches br<first>..: every 5th has drifted (mtu), every 7th is missing from the target, every 11th
// differs from the manifest (stp) and every 13th is owned but no longer declared (a delete). Targets hold at most
// `perTarget` switches, so the same objects can be planned as one large target or several small ones.
struct Case {
  std::string yaml;
  Json observed = Json::object();
};

Case makeCase(int count, int perTarget) {
  Case c;
  for (int t = 0; t * perTarget < count; ++t) {
    const std::string target = "hv" + std::to_string(t);
    c.yaml += "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: " + target +
              "}\nspec: {provider: linux, netns: lab" + std::to_string(t) + "}\n---\n";
    Json live = Json::object(), owned = Json::object();
    for (int i = t * perTarget; i < std::min(count, (t + 1) * perTarget); ++i) {
      const std::string name = "br" + std::to_string(i), addr = target + "/Switch/" + name;
      const bool gone = i % 13 == 0;
      if (!gone)
        c.yaml += "apiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: " + name + "}\nspec: {targets: [" +
                  target + "], mtu: 9000, stp: " + (i % 11 == 0 ? "true" : "false") + "}\n---\n";
      Json applied = {{"mtu", 9000}, {"stp", false}, {"up", true}, {"addresses", Json::array()}};
      owned[addr] = applied;
      if (i % 7 == 0) continue;
      Json now = applied;
      if (i % 5 == 0) now["mtu"] = 1500;
      live[addr] = now;
    }
    c.observed[target] = {{"live", live}, {"owned", owned}};
  }
  return c;
}

// Each change and drift entry by address, as the saved plan says it (action, paths, reason, description, ...).
std::map<std::string, std::string> byAddress(const Plan& plan) {
  std::map<std::string, std::string> out;
  Json j = planToJson(plan);
  for (auto& c : j["resource_changes"]) {
    std::string addr = c.value("address", "");
    // The target (and its netns, in the description) differs between the two shapes; the rest must not.
    c.erase("address");
    c.erase("target");
    c["description"] = std::regex_replace(c.value("description", ""), std::regex("netns lab[0-9]+"), "netns lab");
    out["change " + addr.substr(addr.find('/') + 1)] = c.dump();
  }
  for (const auto& d : plan.drift) out["drift " + d.addr.name] = Json(d.paths).dump();
  return out;
}

Plan planOf(const Case& c, Diagnostics& diags) {
  DesiredState desired = loadDesiredText(c.yaml, "m.yaml", builtinProviders(), diags);
  EXPECT_FALSE(diags.hasErrors()) << diags.render();
  auto snapshots = snapshotFromJson(c.observed);
  EXPECT_TRUE(snapshots.ok());
  auto plan = planAgainst(desired, {}, *snapshots, builtinProviders(), diags);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  return plan.ok() ? *plan : Plan{};
}

}  // namespace

TEST(ParallelPlan, ALargeTargetPlansWhatSmallTargetsPlan) {
  constexpr int kCount = 1200;
  Diagnostics oneDiags, splitDiags;
  Plan one = planOf(makeCase(kCount, kCount), oneDiags);  // one target: compared on every core
  Plan split = planOf(makeCase(kCount, 100), splitDiags);  // twelve targets: each on one thread
  auto a = byAddress(one), b = byAddress(split);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, value] : a) {
    auto it = b.find(key);
    ASSERT_NE(it, b.end()) << key;
    EXPECT_EQ(value, it->second) << key;
  }
  // And what each object's change is, spot-checked.
  size_t creates = 0, updates = 0, deletes = 0, noops = 0;
  for (const auto& c : one.changes) {
    creates += c.action == Action::Create;
    updates += c.action == Action::Update;
    deletes += c.action == Action::Delete;
    noops += c.action == Action::NoOp;
  }
  size_t wantCreates = 0, wantUpdates = 0, wantDeletes = 0, wantNoops = 0;
  for (int i = 0; i < kCount; ++i) {
    if (i % 13 == 0) wantDeletes++;
    else if (i % 7 == 0) wantCreates++;
    else if (i % 5 == 0 || i % 11 == 0) wantUpdates++;
    else wantNoops++;
  }
  EXPECT_EQ(creates, wantCreates);
  EXPECT_EQ(updates, wantUpdates);
  EXPECT_EQ(deletes, wantDeletes);
  EXPECT_EQ(noops, wantNoops);
  // Drift: every owned switch whose live mtu moved, or that is gone (every 7th, not yet 13th-deleted ... all).
  size_t wantDrift = 0;
  for (int i = 0; i < kCount; ++i) wantDrift += (i % 7 == 0 || i % 5 == 0);
  EXPECT_EQ(one.drift.size(), wantDrift);
  for (size_t i = 1; i < one.drift.size(); ++i) EXPECT_LT(one.drift[i - 1].addr, one.drift[i].addr);
  EXPECT_EQ(renderPlanText(one).find("error"), std::string::npos);
}
