// Integration tests against a real Open vSwitch: a private ovsdb-server (and ovs-vswitchd, inside the test's
// network namespace, userspace datapath only) started by scripts/ovs-sandbox.sh in the test's scratch directory,
// plus independent reads of the database with ovs-vsctl and ovsdb-client.
//
//   class MyOvs : public vnptest::OvsTest {};
//   TEST_F(MyOvs, X) {
//     ASSERT_EQ(vsctl("add-br br0 -- set bridge br0 datapath_type=netdev").exitCode, 0);
//     EXPECT_EQ(row("Bridge", "br0")["datapath_type"], "netdev");
//   }
//
// Bridges must say datapath_type=netdev: ovs-vswitchd runs with --disable-system, so a "system" bridge fails
// (the kernel of the test machines may have no openvswitch module). Without Open vSwitch installed every test
// skips with "SKIPPED: Open vSwitch is not installed".
#pragma once
#include <iostream>
#include <string>

#include "tests/integration/harness.h"

namespace vnptest {

// Converts one value of OVSDB's JSON encoding (RFC 7047 §5.1) to plain JSON:
//   ["uuid","U"] / ["named-uuid","U"] -> "U";  ["set",[a,b]] -> [a,b];  ["map",[[k,v],...]] -> {k: v, ...};
//   scalars as they are. OVSDB writes a set of exactly one element as that bare element; it is kept as the scalar.
// Map keys that are not strings (the integer queue numbers of QoS.queues) become their JSON text ("1").
inline Json decodeOvsdbDatum(const Json& v) {
  if (!v.is_array() || v.size() != 2 || !v[0].is_string()) return v;
  const std::string tag = v[0].get<std::string>();
  if (tag == "uuid" || tag == "named-uuid") return v[1];
  if (tag == "set") {
    Json out = Json::array();
    for (const auto& e : v[1]) out.push_back(decodeOvsdbDatum(e));
    return out;
  }
  if (tag == "map") {
    Json out = Json::object();
    for (const auto& kv : v[1]) {
      Json key = decodeOvsdbDatum(kv[0]);
      out[key.is_string() ? key.get<std::string>() : key.dump()] = decodeOvsdbDatum(kv[1]);
    }
    return out;
  }
  return v;
}

class OvsTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (runShell(sandboxScript() + " check", dir).exitCode != 0)
      GTEST_SKIP() << "SKIPPED: Open vSwitch is not installed (run scripts/setup.sh)";
    ovsDir = dir / "ovs";
    std::string cmd = sandboxScript() + " start " + shellQuote(ovsDir.string());
    if (startVswitchd()) cmd += " " + shellQuote(ns);
    sandboxStarted = true;  // even a failed start may have left a daemon for TearDown to stop
    RunResult r = runShell(cmd, dir, 90);
    ASSERT_EQ(r.exitCode, 0) << "ovs-sandbox.sh start failed:\n" << r.err;
    // The socket path is the last line of stdout.
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    dbSocket = out.substr(out.find_last_of('\n') == std::string::npos ? 0 : out.find_last_of('\n') + 1);
    ASSERT_FALSE(dbSocket.empty()) << "ovs-sandbox.sh start printed no socket path";
  }

  void TearDown() override {
    if (sandboxStarted) {
      // A failed test gets the daemons' last log lines: what ovs-vswitchd refused is usually only there.
      if (HasFailure())
        for (const char* log : {"ovs-vswitchd.log", "ovsdb-server.log"})
          if (fs::exists(ovsDir / log)) {
            std::cerr << "---- last lines of " << (ovsDir / log).string() << " ----\n"
                      << runShell("tail -n 40 " + shellQuote((ovsDir / log).string()), dir).out;
          }
      RunResult r = runShell(sandboxScript() + " stop " + shellQuote(ovsDir.string()), dir, 60);
      EXPECT_EQ(r.exitCode, 0) << "ovs-sandbox.sh stop failed:\n" << r.err;
      sandboxStarted = false;
    }
    NetnsTest::TearDown();
  }

  // Override to return false for a test that needs only the database (no ovs-vswitchd: use `--no-wait`).
  virtual bool startVswitchd() const { return true; }

  // The OVSDB remote vnetplan and the OVS tools connect to.
  std::string remote() const { return "unix:" + dbSocket; }

  // ovs-vsctl against this test's database. Without --no-wait it waits until ovs-vswitchd applied the change.
  // Note: a port ovs-vswitchd cannot set up still exits 0 (the reason is in Interface.error and on stderr).
  RunResult vsctl(const std::string& args) {
    return runShell("ovs-vsctl --db=" + shellQuote(remote()) + " --timeout=10 " + args, dir, 30);
  }

  // Every row of table `name` as a JSON object keyed by column name (values decoded by decodeOvsdbDatum,
  // "_uuid" included). An unreadable table is a test failure and returns [].
  Json table(const std::string& name) {
    RunResult r = runShell("ovsdb-client --timeout=10 --format=json dump " + shellQuote(remote()) +
                               " Open_vSwitch " + shellQuote(name),
                           dir, 30);
    if (r.exitCode != 0) {
      ADD_FAILURE() << "ovsdb-client dump " << name << " failed: " << r.err;
      return Json::array();
    }
    // {"caption": "...", "headings": [column, ...], "data": [[value, ...], ...]}
    Json dump = Json::parse(r.out, nullptr, false);
    if (!dump.is_object() || !dump.contains("headings") || !dump.contains("data")) {
      ADD_FAILURE() << "unexpected ovsdb-client output for " << name << ": " << r.out;
      return Json::array();
    }
    const Json& headings = dump["headings"];
    Json rows = Json::array();
    for (const auto& values : dump["data"]) {
      Json row = Json::object();
      for (size_t i = 0; i < headings.size() && i < values.size(); ++i)
        row[headings[i].get<std::string>()] = decodeOvsdbDatum(values[i]);
      rows.push_back(std::move(row));
    }
    return rows;
  }

  // The row of `tableName` whose `name` column is `name`, or null.
  Json row(const std::string& tableName, const std::string& name) {
    for (const auto& r : table(tableName))
      if (r.contains("name") && r["name"] == name) return r;
    return nullptr;
  }

  // Writes manifests with every OVSDB replaced by remote() (and NETNS by the namespace); returns the path.
  std::string ovsManifest(const std::string& yaml, const std::string& file = "ovs.yaml") {
    std::string text = yaml;
    const std::string r = remote();
    for (size_t p = 0; (p = text.find("OVSDB", p)) != std::string::npos; p += r.size()) text.replace(p, 5, r);
    return manifest(text, file);
  }

  static std::string sandboxScript() { return shellQuote(std::string(VNETPLAN_SOURCE_DIR) + "/scripts/ovs-sandbox.sh"); }

  std::string dbSocket;  // DIR/ovs/db.sock
  fs::path ovsDir;       // the sandbox: database, sockets, pidfiles, logs
  bool sandboxStarted = false;
};

}  // namespace vnptest
