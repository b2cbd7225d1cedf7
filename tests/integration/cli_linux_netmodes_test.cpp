// End-to-end, the VM network modes (kind Network) on the CI kernel, proven with real packets: DESIGN §2's
// connectivity table, cell by cell. The target namespace is the host; every VM is a namespace of its own behind a
// veth Port attached to its Network; the "outside" is a namespace behind the host's wan0 (the nat/routed
// networks' forwardDev) that also sits on the bridged network's LAN. Each cell is a ping and a TCP connect; each
// must succeed where the table says yes and fail where it says no. The same after a second apply (empty plan) and
// after rules deleted by hand are repaired. DHCP: a VM namespace gets a lease from dnsmasq with busybox udhcpc.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>
#include <cstring>
#include <regex>
#include <thread>
#include <tuple>

#include "tests/integration/harness.h"

using namespace vnptest;

namespace {

std::string doc(const std::string& body) { return "---\napiVersion: vnetplan.io/v1\n" + body; }

// Runs `fn` in a child process that entered the network namespace `ns`; its exit status is fn's result.
int inNetns(const std::string& ns, const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(99);
    _exit(fn());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 98;
}

// A TCP connect from `ns` to ip:port within 700 ms.
bool tcpConnects(const std::string& ns, const std::string& ip, int port) {
  return inNetns(ns, [&] {
           int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
           sockaddr_in sa{};
           sa.sin_family = AF_INET;
           sa.sin_port = htons(static_cast<uint16_t>(port));
           inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
           if (connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return 0;
           if (errno != EINPROGRESS) return 1;
           pollfd p{s, POLLOUT, 0};
           if (poll(&p, 1, 700) != 1) return 2;
           int e = 0;
           socklen_t len = sizeof e;
           getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len);
           return e == 0 ? 0 : 3;
         }) == 0;
}

bool pings(const std::string& ns, const std::string& ip) {
  return std::system(("ip netns exec " + ns + " ping -c1 -W1 -q " + ip + " >/dev/null 2>&1").c_str()) == 0;
}

// A TCP listener in a namespace that writes the source address of every connection it accepts to a pipe.
struct Listener {
  pid_t pid = -1;
  int readFd = -1;
  Listener(const std::string& ns, int port) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid = fork();
    if (pid == 0) {
      close(fds[0]);
      int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(99);
      int s = socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(static_cast<uint16_t>(port));
      if (bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(s, 16) != 0) _exit(97);
      for (;;) {
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        int c = accept(s, reinterpret_cast<sockaddr*>(&peer), &len);
        if (c < 0) continue;
        char text[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
        std::string line = std::string(text) + "\n";
        (void)!write(fds[1], line.data(), line.size());
        close(c);
      }
    }
    close(fds[1]);
    readFd = fds[0];
    fcntl(readFd, F_SETFL, O_NONBLOCK);
  }
  // The source addresses seen since the last call.
  std::string seen() {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::string out;
    char buf[256];
    for (ssize_t n; (n = read(readFd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  ~Listener() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (readFd >= 0) close(readFd);
  }
};

constexpr int kPort = 8022;

}  // namespace

class CliLinuxNetModes : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped()) return;
    if (std::system("command -v nft >/dev/null 2>&1") != 0) GTEST_SKIP() << "SKIPPED: nft (package nftables) is missing";
    runDir = (dir / "run").string();
    setenv("VNETPLAN_RUN_DIR", runDir.c_str(), 1);
    out = ns + "-o";
    ASSERT_EQ(std::system(("ip netns add " + out).c_str()), 0);
    extraNetns.push_back(out);
  }
  void TearDown() override {
    // dnsmasq daemons of this test's Networks (their pid files are under runDir).
    if (!runDir.empty())
      (void)std::system(("for p in $(cat " + runDir + "/*/*/dnsmasq.pid 2>/dev/null); do kill $p; done").c_str());
    NetnsTest::TearDown();
  }
  std::string vmNs(const std::string& vm) {
    std::string n = ns + "-" + vm;
    if (std::find(extraNetns.begin(), extraNetns.end(), n) == extraNetns.end()) {
      EXPECT_EQ(std::system(("ip netns add " + n).c_str()), 0);
      extraNetns.push_back(n);
    }
    return n;
  }
  void nsIp(const std::string& n, const std::string& args) {
    ASSERT_EQ(std::system(("ip -n " + n + " " + args).c_str()), 0) << n << ": " << args;
  }
  std::string target() {
    return "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: t1}\nspec: {provider: linux, netns: NETNS}\n";
  }
  std::string network(const std::string& name, const std::string& spec) {
    return doc("kind: Network\nmetadata: {name: " + name + "}\nspec: {targets: [t1], " + spec + "}\n");
  }
  // A VM: a veth Port on the Network, whose peer eth0 is the VM's NIC in a namespace of its own.
  std::string vm(const std::string& name, const std::string& attach) {
    return doc("kind: Port\nmetadata: {name: " + name + "}\nspec: {targets: [t1], type: veth, " + attach +
               ", peer: eth0, peerNetns: " + vmNs(name) + "}\n");
  }
  void vmAddress(const std::string& name, const std::string& cidr, const std::string& gw) {
    std::string n = vmNs(name);
    nsIp(n, "addr add " + cidr + " dev eth0");
    nsIp(n, "link set eth0 up");
    nsIp(n, "link set lo up");
    if (!gw.empty()) nsIp(n, "route add default via " + gw);
  }
  std::string nft(const std::string& args) {
    auto r = runShell("ip netns exec " + ns + " nft " + args, dir);
    EXPECT_EQ(r.exitCode, 0) << args << "\n" << r.out << r.err;
    return r.out;
  }
  // Deletes the rule of `chain` in the Network's table whose listing contains `text`.
  void deleteRule(const std::string& network, const std::string& chain, const std::string& text) {
    std::string listing = nft("-a list chain inet vnp-net-" + network + " " + chain);
    std::istringstream lines(listing);
    for (std::string line; std::getline(lines, line);)
      if (line.find(text) != std::string::npos) {
        auto h = line.rfind("# handle ");
        ASSERT_NE(h, std::string::npos) << line;
        nft("delete rule inet vnp-net-" + network + " " + chain + " handle " + line.substr(h + 9));
        return;
      }
    FAIL() << "no rule with '" << text << "' in\n" << listing;
  }

  // Everything a Network or a port policy touches, for comparing with a pre-image: every nftables table (in name
  // order: a rollback that remade one table moves it in the ruleset's listing, which changes nothing), per link
  // its master, records, forwarding, addresses and root qdisc setup, and every dnsmasq's config and liveness.
  std::string snapshot() {
    std::istringstream tables(runShell("ip netns exec " + ns + " nft list tables", dir).out);
    std::vector<std::string> names;
    for (std::string line; std::getline(tables, line);) names.push_back(line.substr(line.find(' ') + 1));
    std::sort(names.begin(), names.end());
    std::string out;
    for (const auto& t : names) out += runShell("ip netns exec " + ns + " nft list table " + t, dir).out;
    for (auto [name, l] : links()) {
      std::vector<std::string> alt;
      for (const auto& a : l.value("altnames", Json::array())) alt.push_back(a.get<std::string>());
      std::sort(alt.begin(), alt.end());
      out += name + " master=" + l.value("master", "") + " alt=" + Json(alt).dump() + " fwd=" +
             runShell("ip netns exec " + ns + " sysctl -n net.ipv4.conf." + name + ".forwarding", dir).out + " addrs=";
      for (const auto& a : addrs(name)) out += a + ",";
      out += "\n" + runShell("ip netns exec " + ns + " tc qdisc show dev " + name + " | grep -v '^qdisc noqueue'", dir).out +
             runShell("ip netns exec " + ns + " tc class show dev " + name, dir).out +
             // Filters without what the kernel numbers itself (u32 node handles, action indexes), in sorted lines.
             runShell("for d in ingress egress; do ip netns exec " + ns + " tc filter show dev " + name +
                          " $d; done | sed -E 's/fh [0-9a-f:]+//; s/ht [0-9a-f]+//; s/index [0-9]+ ref [0-9]+ bind [0-9]+//' | sort",
                      dir)
                 .out;
    }
    if (fs::exists(runDir + "/" + ns))
      for (const auto& e : fs::directory_iterator(runDir + "/" + ns)) {
        std::ifstream conf(e.path() / "dnsmasq.conf"), pidf(e.path() / "dnsmasq.pid");
        std::stringstream ss;
        ss << conf.rdbuf();
        std::string pid;
        pidf >> pid;
        std::string stat;
        std::ifstream("/proc/" + pid + "/stat") >> stat >> stat >> stat;
        out += e.path().filename().string() + ": " + ss.str() + (stat == "S" || stat == "R" ? "running" : "dead:" + stat) + "\n";
      }
    return out;
  }
  // `nft monitor` in the target's namespace while `fn` runs: how many nftables transactions vnetplan committed
  // (the kernel announces each committed batch as a new generation, naming the process).
  int nftCommitsDuring(const std::function<void()>& fn) {
    const std::string file = (dir / "monitor.txt").string(), pidFile = (dir / "monitor.pid").string();
    EXPECT_EQ(std::system(("ip netns exec " + ns + " nft monitor > " + file + " 2>&1 & echo $! > " + pidFile).c_str()), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    fn();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::string pid;
    std::ifstream(pidFile) >> pid;
    if (!pid.empty()) (void)std::system(("kill " + pid + "; sleep 0.1").c_str());
    std::ifstream in(file);
    int n = 0;
    for (std::string line; std::getline(in, line);)
      if (line.find("# new generation") != std::string::npos && line.find("(vnetplan)") != std::string::npos) ++n;
    return n;
  }
  RunResult failing(const std::string& env, const std::string& path) {
    return runShell(env + " " + std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() +
                        " apply --auto-approve -f " + path,
                    dir);
  }

  std::string out;  // the outside host's namespace
  std::string runDir;
};

// DESIGN §2: every mode at once on one target, every cell of the table with a ping and a TCP connect.
TEST_F(CliLinuxNetModes, ConnectivityMatrixOfEveryMode) {
  const std::string host = ns;
  // The outside host: wan0p (198.51.100.2) behind the host's wan0, and lan0p (203.0.113.2) on the bridged LAN.
  std::string m = target() +
                  doc("kind: Port\nmetadata: {name: wan0}\nspec: {targets: [t1], type: veth, peer: wan0p, peerNetns: " +
                      out + ", addresses: [198.51.100.1/24]}\n") +
                  doc("kind: Switch\nmetadata: {name: br-lan}\nspec: {targets: [t1], addresses: [203.0.113.1/24]}\n") +
                  doc("kind: Port\nmetadata: {name: lan0}\nspec: {targets: [t1], type: veth, switch: br-lan, peer: lan0p, "
                      "peerNetns: " + out + "}\n") +
                  network("lan", "mode: bridged, bridge: br-lan") +
                  network("natnet", "mode: nat, ipv4: {address: 192.168.100.1/24}, forwardDev: wan0, portForwards: "
                                    "[{proto: tcp, port: 2222, to: \"192.168.100.10:8022\"}]") +
                  network("routednet", "mode: routed, ipv4: {address: 192.168.101.1/24}, forwardDev: wan0") +
                  network("isonet", "mode: isolated, ipv4: {address: 192.168.102.1/24}") +
                  network("intnet", "mode: internal") +
                  network("opennet", "mode: open, ipv4: {address: 192.168.104.1/24}");
  struct Mode {
    std::string name, network, subnet, hostAddr;
    bool vmHost, vmVm, vmOut, outVm;
  };
  // DESIGN §2's table. open: vnetplan writes no rules and this host has none, so it routes like routed (wan0
  // forwards for the nat and routed networks).
  const std::vector<Mode> modes{
      {"bridged", "lan", "203.0.113", "203.0.113.1", true, true, true, true},
      {"nat", "natnet", "192.168.100", "192.168.100.1", true, true, true, false},
      {"routed", "routednet", "192.168.101", "192.168.101.1", true, true, true, true},
      {"isolated", "isonet", "192.168.102", "192.168.102.1", true, true, false, false},
      {"internal", "intnet", "192.168.103", "198.51.100.1", false, true, false, false},
      {"open", "opennet", "192.168.104", "192.168.104.1", true, true, true, true},
  };
  for (const auto& md : modes) {
    const std::string attach = md.name == "bridged" ? "switch: br-lan" : "network: " + md.network;
    m += vm(md.name + "a", attach) + vm(md.name + "b", attach);
  }
  const std::string path = manifest(m);
  auto r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;

  // The outside host and the VMs' own configuration (what their guests would do).
  nsIp(out, "addr add 198.51.100.2/24 dev wan0p");
  nsIp(out, "addr add 203.0.113.2/24 dev lan0p");
  nsIp(out, "link set lo up");
  for (const char* subnet : {"192.168.100.0/24", "192.168.101.0/24", "192.168.102.0/24", "192.168.103.0/24",
                             "192.168.104.0/24"})
    nsIp(out, std::string("route add ") + subnet + " via 198.51.100.1");  // "no" must be the firewall, not routing
  for (const auto& md : modes) {
    const bool internal = md.name == "internal";
    vmAddress(md.name + "a", md.subnet + ".10/24", internal ? "" : md.hostAddr);
    vmAddress(md.name + "b", md.subnet + ".11/24", internal ? "" : md.hostAddr);
    // The internal VM tries the host by its wan0 address, on-link: the host would answer if nothing stopped it.
    if (internal) nsIp(vmNs(md.name + "a"), "route add 198.51.100.0/24 dev eth0");
  }
  nsIp(host, "route add 192.168.103.0/24 dev intnet");  // likewise the host towards the internal VMs

  auto matrix = [&](const std::string& when) {
    Listener hostL(host, kPort), outL(out, kPort);
    for (const auto& md : modes) {
      SCOPED_TRACE(md.name + " (" + when + ")");
      const std::string a = vmNs(md.name + "a"), b = vmNs(md.name + "b");
      const std::string aIp = md.subnet + ".10", bIp = md.subnet + ".11";
      const std::string outIp = md.name == "bridged" ? "203.0.113.2" : "198.51.100.2";
      Listener aL(a, kPort), bL(b, kPort);
      EXPECT_EQ(pings(a, md.hostAddr), md.vmHost) << "VM->host ping";
      EXPECT_EQ(tcpConnects(a, md.hostAddr, kPort), md.vmHost) << "VM->host TCP";
      EXPECT_EQ(pings(host, aIp), md.vmHost) << "host->VM ping";
      EXPECT_EQ(tcpConnects(host, aIp, kPort), md.vmHost) << "host->VM TCP";
      EXPECT_EQ(pings(a, bIp), md.vmVm) << "VM->VM ping";
      EXPECT_EQ(tcpConnects(a, bIp, kPort), md.vmVm) << "VM->VM TCP";
      EXPECT_EQ(pings(a, outIp), md.vmOut) << "VM->outside ping";
      (void)outL.seen();
      EXPECT_EQ(tcpConnects(a, outIp, kPort), md.vmOut) << "VM->outside TCP";
      if (md.name == "nat") {
        EXPECT_EQ(outL.seen(), "198.51.100.1\n") << "masqueraded as the host";
      } else if (md.name == "routed") {
        EXPECT_EQ(outL.seen(), aIp + "\n") << "routed, not NATed";
      }
      EXPECT_EQ(pings(out, aIp), md.outVm) << "outside->VM ping";
      EXPECT_EQ(tcpConnects(out, aIp, kPort), md.outVm) << "outside->VM TCP";
      if (md.name == "nat") {
        (void)aL.seen();
        EXPECT_TRUE(tcpConnects(out, "198.51.100.1", 2222)) << "the declared port forward";
        EXPECT_EQ(aL.seen(), "198.51.100.2\n") << "the forward reaches VM a, from the outside's address";
        EXPECT_FALSE(tcpConnects(out, "198.51.100.1", 2223)) << "an undeclared port";
      }
    }
  };
  {
    SCOPED_TRACE("first apply");
    matrix("first apply");
  }

  r = vnetplan("plan -f " + path);
  EXPECT_NE(r.out.find("No changes"), std::string::npos) << r.out << r.err;
  r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  matrix("second apply");

  // Rules deleted by hand: drift, then an apply puts them back.
  deleteRule("isonet", "filter_forward", "iifname \"isonet\" drop");
  deleteRule("natnet", "nat_postrouting", "masquerade");
  deleteRule("natnet", "nat_prerouting", "dnat");
  deleteRule("intnet", "filter_input", "drop");
  r = vnetplan("plan -f " + path);
  EXPECT_NE(r.out.find("isonet"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("its nftables rules were changed by hand"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("portForwards"), std::string::npos) << r.out;
  r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  r = vnetplan("plan -f " + path);
  EXPECT_NE(r.out.find("No changes"), std::string::npos) << r.out << r.err;
  matrix("after the repair");

  // Tables of others are never touched: one of the "host's own" survives every apply.
  nft("add table inet theirs");
  r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(nft("list tables").find("table inet theirs"), std::string::npos);

  // Prune: the Networks' tables, bridges and forwarding go; wan0's forwarding is as it was (off).
  r = vnetplan("apply -f " + manifest(target(), "empty.yaml") + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  std::string tables = nft("list tables");
  EXPECT_EQ(tables.find("vnp-net-"), std::string::npos) << tables;
  EXPECT_NE(tables.find("table inet theirs"), std::string::npos) << tables;
  auto l = links();
  for (const char* gone : {"natnet", "routednet", "isonet", "intnet", "opennet"}) EXPECT_FALSE(l.count(gone)) << gone;
}

// DHCP: dnsmasq per Network, outliving the CLI; a VM gets a lease from the range, keeps it across re-applies and a
// dnsmasq restart; a dead dnsmasq is drift; removing the Network stops it.
TEST_F(CliLinuxNetModes, DhcpLeaseFromTheNetworksDnsmasq) {
  if (std::system("command -v dnsmasq >/dev/null 2>&1") != 0) GTEST_SKIP() << "SKIPPED: dnsmasq (dnsmasq-base) is missing";
  if (std::system("command -v busybox >/dev/null 2>&1") != 0) GTEST_SKIP() << "SKIPPED: busybox (udhcpc) is missing";
  const std::string m = target() +
                        network("natnet", "mode: nat, ipv4: {address: 192.168.100.1/24, dhcp: {start: 192.168.100.50, "
                                          "end: 192.168.100.59}}, forwardDev: wan0") +
                        doc("kind: Port\nmetadata: {name: wan0}\nspec: {targets: [t1], type: veth, peer: wan0p}\n") +
                        vm("vm1", "network: natnet");
  const std::string path = manifest(m);
  auto r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  const std::string piddir = runDir + "/" + ns + "/natnet";
  auto pid = [&] {
    std::ifstream in(piddir + "/dnsmasq.pid");
    std::string p;
    in >> p;
    return p;
  };
  const std::string first = pid();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(kill(std::stoi(first), 0), 0) << "dnsmasq outlives the apply that started it";
  const std::string vmns = vmNs("vm1");
  nsIp(vmns, "link set eth0 up");
  // udhcpc prints "lease of A obtained from S"; -s /bin/true: the test only wants the lease, not the address set.
  auto lease = [&] {
    auto u = runShell("ip netns exec " + vmns + " busybox udhcpc -i eth0 -n -q -f -t 10 -T 1 -s /bin/true", dir, 30);
    const std::string text = u.out + u.err;  // udhcpc reports on stderr
    auto at = text.find("lease of ");
    return at == std::string::npos ? "(none: " + text + ")" : text.substr(at + 9, text.find(' ', at + 9) - at - 9);
  };
  const std::string got = lease();
  ASSERT_EQ(got.rfind("192.168.100.5", 0), 0u) << got;  // .50-.59
  r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(pid(), first) << "an empty re-apply leaves dnsmasq alone";
  EXPECT_EQ(lease(), got) << "the VM keeps its address";

  // Dead dnsmasq: drift, repaired by an apply; the lease file kept the VM's address.
  kill(std::stoi(first), SIGTERM);
  for (int i = 0; i < 50 && kill(std::stoi(first), 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  r = vnetplan("plan -f " + path);
  EXPECT_NE(r.out.find("its dnsmasq is not running"), std::string::npos) << r.out << r.err;
  r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(pid(), first);
  EXPECT_EQ(lease(), got) << "leases survive a dnsmasq restart";
  r = vnetplan("plan -f " + path);
  EXPECT_NE(r.out.find("No changes"), std::string::npos) << r.out << r.err;

  // Removing the Network stops it and removes its files.
  const std::string second = pid();
  r = vnetplan("apply -f " + manifest(target() +
                                           doc("kind: Port\nmetadata: {name: wan0}\nspec: {targets: [t1], type: veth, peer: wan0p}\n"),
                                       "gone.yaml") +
               " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  for (int i = 0; i < 50 && kill(std::stoi(second), 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::string stat;
  std::ifstream("/proc/" + second + "/stat") >> stat >> stat >> stat;
  EXPECT_TRUE(kill(std::stoi(second), 0) != 0 || stat == "Z") << "dnsmasq stopped with its Network";
  EXPECT_FALSE(fs::exists(piddir));
}

namespace {

constexpr uint16_t kEtherType = 0x88b5;  // IEEE local experimental

bool macBytes(const std::string& text, unsigned char* out) {
  return std::sscanf(text.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &out[0], &out[1], &out[2], &out[3], &out[4],
                     &out[5]) == 6;
}

// Sends one frame from `ifname` in `ns`: dst, src, our ethertype, payload (the MACs are whatever the test says:
// a raw socket can forge the source).
void sendFrame(const std::string& ns, const std::string& ifname, const std::string& dst, const std::string& src,
               const std::string& payload) {
  int rc = inNetns(ns, [&] {
    int s = socket(AF_PACKET, SOCK_RAW, htons(kEtherType));
    if (s < 0) return 1;
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    sll.sll_halen = 6;
    unsigned char frame[64] = {};
    if (!macBytes(dst, frame) || !macBytes(src, frame + 6)) return 2;
    frame[12] = kEtherType >> 8;
    frame[13] = kEtherType & 0xff;
    std::memcpy(frame + 14, payload.data(), std::min<size_t>(payload.size(), 40));
    macBytes(dst, sll.sll_addr);
    return sendto(s, frame, sizeof frame, 0, reinterpret_cast<sockaddr*>(&sll), sizeof sll) == sizeof frame ? 0 : 3;
  });
  EXPECT_EQ(rc, 0) << "send from " << ns;
}

// Receives our frames on `ifname` in `ns` for a while, in a child; payloads() returns what arrived.
struct FrameSink {
  pid_t pid = -1;
  int readFd = -1;
  FrameSink(const std::string& ns, const std::string& ifname) {
    int fds[2];
    if (pipe(fds) != 0) return;
    int ready[2];
    if (pipe(ready) != 0) return;
    pid = fork();
    if (pid == 0) {
      close(fds[0]);
      close(ready[0]);
      int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(99);
      int s = socket(AF_PACKET, SOCK_RAW, htons(kEtherType));
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = htons(kEtherType);
      sll.sll_ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
      if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) _exit(98);
      (void)!write(ready[1], "r", 1);
      for (;;) {
        unsigned char buf[2048];
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n <= 14) continue;
        std::string p(reinterpret_cast<char*>(buf) + 14, static_cast<size_t>(n) - 14);
        p = p.substr(0, p.find('\0')) + "\n";
        (void)!write(fds[1], p.data(), p.size());
      }
    }
    close(fds[1]);
    close(ready[1]);
    char c;
    (void)!read(ready[0], &c, 1);
    close(ready[0]);
    readFd = fds[0];
    fcntl(readFd, F_SETFL, O_NONBLOCK);
  }
  std::string payloads() {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::string out;
    char buf[512];
    for (ssize_t n; (n = read(readFd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  ~FrameSink() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (readFd >= 0) close(readFd);
  }
};

}  // namespace

// Security policy, inherited Switch -> Port and overridden on a Port: frames with a forged source MAC are dropped,
// correct ones pass; allowMacChanges: false keeps unicast for another MAC from the guest.
TEST_F(CliLinuxNetModes, SecurityPolicyDropsForgedFrames) {
  const std::string A = "52:54:00:aa:00:01", B = "52:54:00:bb:00:01", forged = "52:54:00:aa:00:99";
  const std::string a = vmNs("sa"), b = vmNs("sb");
  auto manifestWith = [&](const std::string& switchSecurity) {
    return target() +
           doc("kind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1], security: {" + switchSecurity + "}}\n") +
           doc("kind: Port\nmetadata: {name: sa}\nspec: {targets: [t1], type: veth, switch: br0, peer: eth0, peerNetns: " +
               a + ", linux: {peerMac: \"" + A + "\"}}\n") +
           doc("kind: Port\nmetadata: {name: sb}\nspec: {targets: [t1], type: veth, switch: br0, peer: eth0, peerNetns: " +
               b + ", linux: {peerMac: \"" + B + "\"}, security: {allowForgedTransmits: true, allowMacChanges: true}}\n");
  };
  const std::string path = manifest(manifestWith("allowForgedTransmits: false, allowMacChanges: false"));
  auto r = vnetplan("plan -f " + path);
  EXPECT_NE(r.out.find("inherited"), std::string::npos) << r.out;
  r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  r = vnetplan("plan -f " + path);
  EXPECT_NE(r.out.find("No changes"), std::string::npos) << r.out << r.err;

  auto exchange = [&] {
    FrameSink atB(b, "eth0"), atA(a, "eth0");
    sendFrame(a, "eth0", "ff:ff:ff:ff:ff:ff", A, "a-correct");
    sendFrame(a, "eth0", "ff:ff:ff:ff:ff:ff", forged, "a-forged");
    sendFrame(b, "eth0", "ff:ff:ff:ff:ff:ff", "52:54:00:bb:00:99", "b-forged");  // sb allows it
    sendFrame(b, "eth0", A, B, "b-to-a");
    sendFrame(b, "eth0", "52:54:00:aa:00:77", B, "b-to-changed-a");  // unknown unicast: flooded, but not to sa
    return std::make_pair(atB.payloads(), atA.payloads());
  };
  auto [gotB, gotA] = exchange();
  EXPECT_NE(gotB.find("a-correct"), std::string::npos) << gotB;
  EXPECT_EQ(gotB.find("a-forged"), std::string::npos) << gotB;
  EXPECT_NE(gotA.find("b-forged"), std::string::npos) << gotA;
  EXPECT_NE(gotA.find("b-to-a\n"), std::string::npos) << gotA;
  EXPECT_EQ(gotA.find("b-to-changed-a"), std::string::npos) << gotA;

  // A rule deleted by hand is drift, and the apply restores it.
  ASSERT_EQ(std::system(("ip netns exec " + ns + " nft flush chain bridge vnp-port-sa filter_forward").c_str()), 0);
  r = vnetplan("plan -f " + path);
  EXPECT_NE(r.out.find("security.allow"), std::string::npos) << r.out;
  r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  std::tie(gotB, gotA) = exchange();
  EXPECT_EQ(gotB.find("a-forged"), std::string::npos) << gotB;
  EXPECT_NE(gotB.find("a-correct"), std::string::npos) << gotB;

  // Lifted on the Switch: the inherited policy goes, forged frames pass, the port's table is gone.
  r = vnetplan("apply -f " + manifest(manifestWith("allowForgedTransmits: true, allowMacChanges: true"), "lift.yaml") +
               " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  std::tie(gotB, gotA) = exchange();
  EXPECT_NE(gotB.find("a-forged"), std::string::npos) << gotB;
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list tables", dir).out.find("vnp-port-sa"), std::string::npos);

  // allowPromiscuous: true cannot be honoured by a bridge port: a plan-time error naming the field.
  r = vnetplan("plan -f " + manifest(manifestWith("allowPromiscuous: true"), "promisc.yaml"));
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE((r.out + r.err).find("security.allowPromiscuous: true cannot be honoured"), std::string::npos) << r.out << r.err;
}

// Per kind (Network): create, empty second plan, `show` round trip, update in place (port forwards, DHCP range,
// mode, a renamed bridge), rollback after a failure injected at every step (the exact pre-image: nftables tables,
// forwarding, records, addresses, dnsmasq config and process), prune (forwardDev given back as it was).
TEST_F(CliLinuxNetModes, NetworkLifecycleUpdateRollbackPrune) {
  // wan0 is the host's own device (not declared): forwarding off, as the Networks must leave it.
  ip("link add wan0 type veth peer name wan0p");
  ip("link set wan0 up");
  ip("link set wan0p up");
  auto v = [&](const std::string& pf, const std::string& end, const std::string& isoMode, const std::string& bridge) {
    return target() +
           network("natnet", "mode: nat, bridge: " + bridge + ", ipv4: {address: 192.168.100.1/24, dhcp: {start: "
                             "192.168.100.50, end: " + end + "}}, forwardDev: wan0, portForwards: [{proto: tcp, port: " +
                             pf + ", to: \"192.168.100.10:22\"}]") +
           network("iso", "mode: " + isoMode + ", ipv4: {address: 192.168.102.1/24}" +
                              (isoMode == "routed" ? ", forwardDev: wan0" : "")) +
           vm("vm1", "network: natnet");
  };
  const std::string v1 = manifest(v("2222", "192.168.100.59", "isolated", "natnet"), "v1.yaml");
  auto r = vnetplan("apply -f " + v1 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0);
  {
    auto shown = vnetplan("show --target t1 -f " + v1);
    ASSERT_EQ(shown.exitCode, 0) << shown.err;
    auto g = manifest(target() + shown.out, "shown.yaml");
    auto p = vnetplan("plan --detailed-exitcode -f " + g);
    EXPECT_EQ(p.exitCode, 0) << p.out << p.err << shown.out;
  }
  EXPECT_EQ(runShell("ip netns exec " + ns + " sysctl -n net.ipv4.conf.wan0.forwarding", dir).out, "1\n");
  const std::string atV1 = snapshot();

  // Update in place: another forward, a longer DHCP range, isolated -> routed, the bridge renamed (vm1 stays on it).
  const std::string v2 = manifest(v("2223", "192.168.100.69", "routed", "natbr"), "v2.yaml");
  r = vnetplan("apply -f " + v2 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("0 to destroy, 0 to replace"), std::string::npos) << r.out;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v2).exitCode, 0);
  std::string rules = runShell("ip netns exec " + ns + " nft list table inet vnp-net-natnet", dir).out;
  EXPECT_NE(rules.find("tcp dport 2223 dnat ip to 192.168.100.10:22"), std::string::npos) << rules;
  EXPECT_NE(rules.find("iifname \"natbr\" drop"), std::string::npos) << rules;
  EXPECT_NE(runShell("ip netns exec " + ns + " nft list table inet vnp-net-iso", dir).out.find("ip daddr 192.168.102.0/24 accept"),
            std::string::npos);
  EXPECT_EQ(links()["vm1"].value("master", ""), "natbr");
  std::ifstream conf(runDir + "/" + ns + "/natnet/dnsmasq.conf");
  std::stringstream cs;
  cs << conf.rdbuf();
  EXPECT_NE(cs.str().find("dhcp-range=192.168.100.50,192.168.100.69"), std::string::npos) << cs.str();
  EXPECT_NE(cs.str().find("interface=natbr"), std::string::npos) << cs.str();
  const std::string atV2 = snapshot();
  EXPECT_NE(atV1, atV2);

  // Back to v1 with a failure injected at every step: each rollback restores v2 exactly.
  for (int k = 1; k <= 2; ++k) {
    auto f = runShell("VNETPLAN_FAIL_AT_STEP=" + std::to_string(k) + " " + std::string(VNETPLAN_BINARY) + " --state file://" +
                          (dir / "state").string() + " apply --auto-approve -f " + v1,
                      dir);
    ASSERT_EQ(f.exitCode, 1) << "k=" << k << "\n" << f.out << f.err;
    EXPECT_NE(f.err.find("Rolled back"), std::string::npos) << f.err;
    EXPECT_EQ(snapshot(), atV2) << "k=" << k;
    EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v2).exitCode, 0) << "k=" << k;
  }
  r = vnetplan("apply -f " + v1 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(snapshot(), atV1) << "v2 -> v1 gives v1's state back (renamed bridge, rules, forwarding, dnsmasq)";
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0);

  // Prune: tables, bridges, records and dnsmasq go; wan0's forwarding is off again, as it was.
  r = vnetplan("apply -f " + manifest(target(), "empty.yaml") + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list ruleset", dir).out, "");
  EXPECT_EQ(runShell("ip netns exec " + ns + " sysctl -n net.ipv4.conf.wan0.forwarding", dir).out, "0\n");
  EXPECT_EQ(links()["wan0"].value("altnames", Json::array()).size(), 0u);
  EXPECT_FALSE(links().count("natbr"));
  EXPECT_FALSE(fs::exists(runDir + "/" + ns + "/natnet"));
}

// Shaping (TBF through libnl-route), inherited from the Switch: the kernel has exactly the converted values, a
// second plan is empty, and iperf3 towards the guest measures the configured rate within 15 %.
TEST_F(CliLinuxNetModes, ShapingLimitsThroughputToTheConfiguredRate) {
  if (std::system("command -v iperf3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "SKIPPED: iperf3 is missing";
  const std::string g = vmNs("sh");
  auto m = [&](int kbps) {
    return target() +
           doc("kind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1], addresses: [10.77.0.1/24], shaping: "
               "{averageKbps: " + std::to_string(kbps) + ", peakKbps: " + std::to_string(2 * kbps) + ", burstKiB: 64}}\n") +
           vm("sh", "switch: br0");
  };
  auto measure = [&](int port) {
    EXPECT_EQ(std::system(("ip netns exec " + g + " iperf3 -s -D -1 -p " + std::to_string(port) + " --pidfile " +
                           (dir / "iperf.pid").string())
                              .c_str()),
              0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto r = runShell("ip netns exec " + ns + " iperf3 -c 10.77.0.2 -p " + std::to_string(port) + " -t 3 -J", dir, 30);
    Json j = Json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("end")) return -1.0;
    double kbps = j["end"]["sum_received"].value("bits_per_second", -1.0) / 1000.0;
    std::printf("shaping: measured %.0f kbit/s\n", kbps);
    return kbps;
  };
  const std::string path = manifest(m(20000));
  auto r = vnetplan("apply -f " + path + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + path).exitCode, 0);
  std::string tc = runShell("ip netns exec " + ns + " tc qdisc show dev sh", dir).out;
  EXPECT_NE(tc.find("tbf 1: root"), std::string::npos) << tc;
  EXPECT_NE(tc.find("rate 20Mbit burst 64Kb peakrate 40Mbit"), std::string::npos) << tc;
  vmAddress("sh", "10.77.0.2/24", "");
  double kbps = measure(5301);
  EXPECT_GT(kbps, 20000 * 0.85) << kbps;
  EXPECT_LT(kbps, 20000 * 1.15) << kbps;

  // Update in place: 5 Mbit/s.
  const std::string path2 = manifest(m(5000), "slow.yaml");
  r = vnetplan("apply -f " + path2 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + path2).exitCode, 0);
  kbps = measure(5302);
  EXPECT_GT(kbps, 5000 * 0.85) << kbps;
  EXPECT_LT(kbps, 5000 * 1.15) << kbps;

  // Changed by hand: drift, repaired.
  ASSERT_EQ(std::system(("ip netns exec " + ns + " tc qdisc replace dev sh root handle 1: tbf rate 1mbit burst 64kb latency 50ms").c_str()), 0);
  r = vnetplan("plan -f " + path2);
  EXPECT_NE(r.out.find("shaping.averageKbps"), std::string::npos) << r.out;
  r = vnetplan("apply -f " + path2 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(runShell("ip netns exec " + ns + " tc qdisc show dev sh", dir).out.find("rate 5Mbit burst 64Kb peakrate 10Mbit"),
            std::string::npos);
}

// Every nftables change of one apply is one transaction: two Networks' inet tables and two ports' bridge tables
// commit as one batch (one new generation in `nft monitor`). A failure of that commit (VNETPLAN_FAIL_AT_FLUSH)
// rolls the target back to its exact pre-image (links, addresses, forwarding, records, dnsmasq, tables); a failure
// injected at a step after the Network steps leaves no table behind.
TEST_F(CliLinuxNetModes, OneNftablesBatchPerApply) {
  ip("link add wan0 type veth peer name wan0p");
  ip("link set wan0 up");
  ip("link set wan0p up");
  const std::string A = "52:54:00:aa:00:01", B = "52:54:00:bb:00:01";
  auto m = [&](const std::string& pf, const std::string& isoAddr, bool strict) {
    const std::string sec = strict ? ", security: {allowForgedTransmits: false}" : "";
    return target() +
           network("natnet", "mode: nat, ipv4: {address: 192.168.110.1/24, dhcp: {start: 192.168.110.50, end: "
                             "192.168.110.59}}, forwardDev: wan0, portForwards: [{proto: tcp, port: " + pf +
                                 ", to: \"192.168.110.10:22\"}]") +
           network("iso", "mode: isolated, ipv4: {address: " + isoAddr + "}") +
           doc("kind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1]}\n") +
           doc("kind: Port\nmetadata: {name: pa}\nspec: {targets: [t1], type: veth, switch: br0, peer: pa-p, linux: "
               "{peerMac: \"" + A + "\"}" + sec + "}\n") +
           doc("kind: Port\nmetadata: {name: pb}\nspec: {targets: [t1], type: veth, switch: br0, peer: pb-p, linux: "
               "{peerMac: \"" + B + "\"}" + sec + "}\n");
  };
  const std::string empty = snapshot();
  const std::string v1 = manifest(m("2222", "192.168.112.1/24", true), "v1.yaml");

  // A failure injected at step 4 (after the Switch and both Networks, before the ports): the Networks' bridges,
  // addresses, forwarding and dnsmasq are rolled back, and their tables were never committed.
  auto f = failing("VNETPLAN_FAIL_AT_STEP=4", v1);
  ASSERT_EQ(f.exitCode, 1) << f.out << f.err;
  EXPECT_NE(f.err.find("Rolled back"), std::string::npos) << f.err;
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list ruleset", dir).out, "");
  EXPECT_EQ(snapshot(), empty);

  // The same apply with a failing commit: nothing of it is left.
  int commits = nftCommitsDuring([&] {
    f = failing("VNETPLAN_FAIL_AT_FLUSH=1", v1);
  });
  ASSERT_EQ(f.exitCode, 1) << f.out << f.err;
  EXPECT_NE(f.err.find("deferred commit failed"), std::string::npos) << f.err;
  EXPECT_EQ(commits, 0);
  EXPECT_EQ(snapshot(), empty);

  RunResult r;
  commits = nftCommitsDuring([&] { r = vnetplan("apply -f " + v1 + " --auto-approve"); });
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(commits, 1) << "four tables, one transaction";
  const std::string tables = runShell("ip netns exec " + ns + " nft list tables", dir).out;
  for (const char* t : {"inet vnp-net-natnet", "inet vnp-net-iso", "bridge vnp-port-pa", "bridge vnp-port-pb"})
    EXPECT_NE(tables.find(t), std::string::npos) << t << "\n" << tables;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0);
  const std::string atV1 = snapshot();

  // An update of every table: still one transaction; its failing commit rolls back to v1 exactly (the isolated
  // network's address too, which changed before the commit).
  const std::string v2 = manifest(m("2223", "192.168.113.1/24", false), "v2.yaml");
  commits = nftCommitsDuring([&] { f = failing("VNETPLAN_FAIL_AT_FLUSH=1", v2); });
  ASSERT_EQ(f.exitCode, 1) << f.out << f.err;
  EXPECT_NE(f.err.find("Rolled back"), std::string::npos) << f.err;
  EXPECT_LE(commits, 1) << "the rollback rewrites the tables in at most one batch";
  EXPECT_EQ(snapshot(), atV1);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0);
  commits = nftCommitsDuring([&] { r = vnetplan("apply -f " + v2 + " --auto-approve"); });
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(commits, 1);
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list tables", dir).out.find("vnp-port-"), std::string::npos);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v2).exitCode, 0);

  // Prune: every table in one transaction too.
  commits = nftCommitsDuring([&] { r = vnetplan("apply -f " + manifest(target(), "empty.yaml") + " --auto-approve"); });
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(commits, 1);
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list ruleset", dir).out, "");
}

// Taking `security` and `shaping` out of the manifests removes the port's rules and its TBF (the engine compares
// the manifest's fields only: the provider says "none" for a policy left out). Unchanged manifests and the `show`
// round trip still plan nothing.
TEST_F(CliLinuxNetModes, RemovingAPolicyRemovesItsRulesAndQdisc) {
  auto m = [&](const std::string& policies) {
    return target() + doc("kind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1]" + policies + "}\n") +
           doc("kind: Port\nmetadata: {name: pa}\nspec: {targets: [t1], type: veth, switch: br0, peer: pa-p, linux: "
               "{peerMac: \"52:54:00:aa:00:01\"}}\n") +
           doc("kind: Port\nmetadata: {name: pb}\nspec: {targets: [t1], type: tap, switch: br0, mac: \"52:54:00:bb:00:01\"}\n");
  };
  auto roundTrip = [&](const std::string& path) {
    EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + path).exitCode, 0);
    auto shown = vnetplan("show --target t1 -f " + path);
    ASSERT_EQ(shown.exitCode, 0) << shown.err;
    auto p = vnetplan("plan --detailed-exitcode -f " + manifest(target() + shown.out, "shown.yaml"));
    EXPECT_EQ(p.exitCode, 0) << p.out << p.err << shown.out;
  };
  const std::string plain = manifest(m(""), "plain.yaml");
  auto r = vnetplan("apply -f " + plain + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  roundTrip(plain);
  const std::string with = manifest(m(", security: {allowForgedTransmits: false, allowMacChanges: false}, shaping: "
                                      "{averageKbps: 10000, burstKiB: 32}"),
                                    "with.yaml");
  r = vnetplan("apply -f " + with + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  roundTrip(with);
  for (const char* port : {"pa", "pb"}) {
    EXPECT_NE(runShell("ip netns exec " + ns + " tc qdisc show dev " + port, dir).out.find("tbf"), std::string::npos);
    EXPECT_NE(runShell("ip netns exec " + ns + " nft list tables", dir).out.find(std::string("vnp-port-") + port),
              std::string::npos);
  }
  // Both taken out again: the plan says so, the apply removes them.
  r = vnetplan("plan --detailed-exitcode -f " + plain);
  EXPECT_EQ(r.exitCode, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("security.allowForgedTransmits"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("shaping.averageKbps"), std::string::npos) << r.out;
  r = vnetplan("apply -f " + plain + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  for (const char* port : {"pa", "pb"})
    EXPECT_EQ(runShell("ip netns exec " + ns + " tc qdisc show dev " + port, dir).out.find("tbf"), std::string::npos);
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list ruleset", dir).out, "");
  roundTrip(plain);
  // Explicitly permissive is the same as left out: nothing to do.
  r = vnetplan("plan --detailed-exitcode -f " +
               manifest(m(", security: {allowForgedTransmits: true, allowMacChanges: true, allowPromiscuous: false}"),
                        "permissive.yaml"));
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
}

// A Network's mode between bridged (an existing bridge marked) and a mode with a bridge of its own: refused when
// planning, naming the provider, the field and why (the live mode is what decides).
TEST_F(CliLinuxNetModes, ModeChangeToOrFromBridgedIsAPlanError) {
  const std::string own = manifest(target() + network("n1", "mode: isolated, bridge: nbr, ipv4: {address: 192.168.120.1/24}"), "own.yaml");
  auto r = vnetplan("apply -f " + own + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  const std::string bridged = manifest(target() + doc("kind: Switch\nmetadata: {name: lan}\nspec: {targets: [t1]}\n") +
                                           network("n1", "mode: bridged, bridge: nbr"),
                                       "bridged.yaml");
  r = vnetplan("plan -f " + bridged);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("linux: t1/Network/n1: field mode: isolated -> bridged cannot be changed in place"), std::string::npos)
      << r.out << r.err;
  EXPECT_NE(r.err.find("bridged.yaml:"), std::string::npos) << r.err;
  // Another own-bridge mode is in place, as before.
  r = vnetplan("plan --detailed-exitcode -f " +
               manifest(target() + network("n1", "mode: host-only, bridge: nbr, ipv4: {address: 192.168.120.1/24}"), "ho.yaml"));
  EXPECT_EQ(r.exitCode, 2) << r.out << r.err;
}

// NIOC as an HTB tree on the switch's uplink (a one-NIC uplink: a veth whose other end is the outside host). Two
// VMs send to the outside at once, one in class virtualmachine (shares high = 100, the default class), one in
// vmotion (shares low = 25): their throughputs follow the shares (4:1) within the tolerance below, and share the
// uplink's rate. Then the lifecycle of the tree: empty second plan, show round trip, drift repaired, update in
// place, rollback after failures injected at every step and at the commit (exact pre-image: qdisc, classes, port
// tables), and removal.
TEST_F(CliLinuxNetModes, NiocDividesTheUplinkByShares) {
  if (std::system("command -v iperf3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "SKIPPED: iperf3 is missing";
  ip("link add up0 type veth peer name up0p netns " + out);
  nsIp(out, "addr add 10.88.0.100/24 dev up0p");
  nsIp(out, "link set up0p up");
  nsIp(out, "link set lo up");
  auto m = [&](const std::string& nioc, const std::string& vbClass) {
    return target() +
           doc("kind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1], uplinks: {nics: [up0]}" + nioc + "}\n") +
           vm("va", "switch: br0") + vm("vb", "switch: br0" + vbClass);
  };
  const std::string v1 = manifest(m(", nioc: {enabled: true, uplinkMbps: 40, classes: {virtualmachine: {shares: high}, "
                                    "vmotion: {shares: low}}}",
                                    ", niocClass: vmotion"),
                                  "v1.yaml");
  auto r = vnetplan("apply -f " + v1 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0);
  {
    auto shown = vnetplan("show --target t1 -f " + v1);
    ASSERT_EQ(shown.exitCode, 0) << shown.err;
    EXPECT_NE(shown.out.find("niocClass: vmotion"), std::string::npos) << shown.out;
    auto p = vnetplan("plan --detailed-exitcode -f " + manifest(target() + shown.out, "shown.yaml"));
    EXPECT_EQ(p.exitCode, 0) << p.out << p.err << shown.out;
  }
  std::string tc = runShell("ip netns exec " + ns + " tc class show dev up0", dir).out;
  EXPECT_NE(tc.find("class htb 1:1 root rate 40Mbit ceil 40Mbit"), std::string::npos) << tc;
  EXPECT_NE(tc.find("class htb 1:10 parent 1:1 prio 0 rate 1Kbit ceil 40Mbit"), std::string::npos) << tc;
  EXPECT_NE(tc.find("class htb 1:11 parent 1:1 prio 0 rate 1Kbit ceil 40Mbit"), std::string::npos) << tc;
  EXPECT_NE(runShell("ip netns exec " + ns + " nft list table bridge vnp-nioc-vb", dir).out.find("meta priority set 1:11"),
            std::string::npos);

  vmAddress("va", "10.88.0.2/24", "");
  vmAddress("vb", "10.88.0.3/24", "");
  // Both flows at once, towards two servers on the outside host: 8 s each, counted over seconds 2 to 6 of each, when
  // both surely run (the two clients start up to a few hundred ms apart; counting their whole runs credited one
  // with the time it ran alone).
  auto compete = [&](int base) {
    for (int p : {base, base + 1})
      EXPECT_EQ(std::system(("ip netns exec " + out + " iperf3 -s -D -1 -p " + std::to_string(p)).c_str()), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::string fa = (dir / "fa.json").string(), fb = (dir / "fb.json").string();
    std::string cmd = "ip netns exec " + vmNs("va") + " iperf3 -c 10.88.0.100 -p " + std::to_string(base) + " -t 8 -J > " +
                      fa + " & ip netns exec " + vmNs("vb") + " iperf3 -c 10.88.0.100 -p " + std::to_string(base + 1) +
                      " -t 8 -J > " + fb + "; wait";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    auto rate = [](const std::string& f) {
      std::ifstream in(f);
      Json j = Json::parse(in, nullptr, false);
      if (j.is_discarded() || !j.contains("intervals")) return -1.0;
      double bytes = 0, secs = 0;
      for (const auto& i : j["intervals"]) {
        const Json& s = i["sum"];
        if (s.value("start", 0.0) >= 1.99 && s.value("end", 0.0) <= 6.01) {
          bytes += s.value("bytes", 0.0);
          secs += s.value("end", 0.0) - s.value("start", 0.0);
        }
      }
      return secs > 0 ? bytes * 8 / secs / 1e6 : -1.0;
    };
    return std::make_pair(rate(fa), rate(fb));
  };
  auto [a, b] = compete(5401);
  std::printf("nioc: virtualmachine (high) %.2f Mbit/s, vmotion (low) %.2f Mbit/s, ratio %.2f (shares 4.00)\n", a, b,
              b > 0 ? a / b : 0.0);
  ASSERT_GT(b, 0);
  EXPECT_GT(a / b, 4.0 * 0.75) << a << " " << b;
  EXPECT_LT(a / b, 4.0 * 1.25) << a << " " << b;
  EXPECT_GT(a + b, 40 * 0.8);
  EXPECT_LT(a + b, 40 * 1.1);

  // Drift: a class changed by hand, repaired by the apply.
  ASSERT_EQ(std::system(("ip netns exec " + ns + " tc class change dev up0 parent 1:1 classid 1:11 htb rate 1kbit ceil 40mbit quantum 1514").c_str()), 0);
  r = vnetplan("plan -f " + v1);
  EXPECT_NE(r.out.find("nioc.classes.vmotion.shares"), std::string::npos) << r.out;
  ASSERT_EQ(vnetplan("apply -f " + v1 + " --auto-approve").exitCode, 0);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0);
  const std::string atV1 = snapshot();

  // Update in place: vmotion gets a reservation and a limit, vb moves to management (shares normal, limited to
  // 8 Mbit/s), which the manifest adds; every failure on the way rolls back to v1 exactly.
  const std::string v2 = manifest(m(", nioc: {enabled: true, uplinkMbps: 40, classes: {virtualmachine: {shares: 100}, "
                                    "vmotion: {shares: low, reservationMbps: 5, limitMbps: 20}, management: {shares: normal, "
                                    "limitMbps: 8}}}",
                                    ", niocClass: management"),
                                  "v2.yaml");
  for (const std::string env : {"VNETPLAN_FAIL_AT_STEP=1", "VNETPLAN_FAIL_AT_STEP=2", "VNETPLAN_FAIL_AT_FLUSH=1"}) {
    auto f = failing(env, v2);
    ASSERT_EQ(f.exitCode, 1) << env << "\n" << f.out << f.err;
    EXPECT_NE(f.err.find("Rolled back"), std::string::npos) << f.err;
    EXPECT_EQ(snapshot(), atV1) << env;
  }
  r = vnetplan("apply -f " + v2 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("0 to destroy, 0 to replace"), std::string::npos) << r.out;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v2).exitCode, 0);
  tc = runShell("ip netns exec " + ns + " tc class show dev up0", dir).out;
  EXPECT_NE(tc.find("class htb 1:11 parent 1:1 prio 0 rate 5Mbit ceil 20Mbit"), std::string::npos) << tc;
  EXPECT_NE(tc.find("class htb 1:12 parent 1:1"), std::string::npos) << tc;
  EXPECT_NE(runShell("ip netns exec " + ns + " nft list table bridge vnp-nioc-vb", dir).out.find("meta priority set 1:12"),
            std::string::npos);
  // The limit is a ceiling: vb's class gets its 8 Mbit/s (less than its share of 40), va the rest.
  std::tie(a, b) = compete(5403);
  std::printf("nioc: virtualmachine %.2f Mbit/s, management (limit 8) %.2f Mbit/s\n", a, b);
  EXPECT_GT(b, 8 * 0.8) << b;
  EXPECT_LT(b, 8 * 1.1) << b;
  EXPECT_GT(a + b, 40 * 0.8);
  EXPECT_LT(a + b, 40 * 1.1);

  // nioc taken out of the manifests: the tree and the port's classification go.
  const std::string v3 = manifest(m("", ""), "v3.yaml");
  r = vnetplan("apply -f " + v3 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v3).exitCode, 0);
  EXPECT_EQ(runShell("ip netns exec " + ns + " tc qdisc show dev up0", dir).out.find("htb"), std::string::npos);
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list ruleset", dir).out, "");

  // Created with the switch (a failure at the ports' steps or at the commit leaves nothing: the NIC is given back
  // without a tree), and pruned with it.
  ASSERT_EQ(vnetplan("apply -f " + manifest(target(), "empty.yaml") + " --auto-approve").exitCode, 0);
  const std::string atEmpty = snapshot();
  EXPECT_EQ(atEmpty.find("htb"), std::string::npos) << atEmpty;
  for (const std::string env : {"VNETPLAN_FAIL_AT_STEP=2", "VNETPLAN_FAIL_AT_STEP=3", "VNETPLAN_FAIL_AT_FLUSH=1"}) {
    auto f = failing(env, v1);
    ASSERT_EQ(f.exitCode, 1) << env << "\n" << f.out << f.err;
    EXPECT_EQ(snapshot(), atEmpty) << env;
  }
  ASSERT_EQ(vnetplan("apply -f " + v1 + " --auto-approve").exitCode, 0);
  EXPECT_NE(runShell("ip netns exec " + ns + " tc qdisc show dev up0", dir).out.find("htb 1: root"), std::string::npos);
  r = vnetplan("apply -f " + manifest(target(), "empty.yaml") + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(runShell("ip netns exec " + ns + " tc qdisc show dev up0", dir).out.find("htb"), std::string::npos);
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list ruleset", dir).out, "");

  // Plan-time errors name the provider and the field.
  r = vnetplan("plan -f " + manifest(m(", nioc: {enabled: true, classes: {vmotion: {shares: low}}}", ""), "nouplink.yaml"));
  EXPECT_NE(r.err.find("linux: t1/Switch/br0: nioc needs uplinkMbps"), std::string::npos) << r.err;
  r = vnetplan("plan -f " + manifest(m(", nioc: {enabled: true, uplinkMbps: 10, classes: {vmotion: {reservationMbps: 8}, "
                                       "nfs: {reservationMbps: 8}}}", ""), "over.yaml"));
  EXPECT_NE(r.err.find("reserve 16 Mbit/s, more than uplinkMbps 10"), std::string::npos) << r.err;
  r = vnetplan("plan -f " + manifest(m(", nioc: {enabled: true, uplinkMbps: 10}", ", niocClass: nfs"), "undeclared.yaml"));
  EXPECT_NE(r.err.find("linux: t1/Port/vb: niocClass nfs: its switch br0's nioc has no class nfs"), std::string::npos) << r.err;
  r = vnetplan("plan -f " + manifest(m("", ", niocClass: nfs"), "nonioc.yaml"));
  EXPECT_NE(r.err.find("linux: t1/Port/vb: niocClass nfs: its switch br0 has no nioc"), std::string::npos) << r.err;
}

// A PortGroup's niocClass reaches its ports (inherited, as the policies are) and is enforced on each of them; a port's
// own class wins; the group itself holds nothing of it, so show round-trips and the second plan is empty.
TEST_F(CliLinuxNetModes, PortGroupNiocClassReachesItsPorts) {
  ip("link add up0 type veth peer name up0p netns " + out);
  const std::string sw = doc(
      "kind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1], uplinks: {nics: [up0]}, nioc: {enabled: true, "
      "uplinkMbps: 40, classes: {virtualmachine: {shares: high}, vmotion: {shares: low}, management: {shares: normal}}}}\n");
  auto m = [&](const std::string& groupClass) {
    return target() + sw + doc("kind: PortGroup\nmetadata: {name: mig}\nspec: {targets: [t1], switch: br0" + groupClass + "}\n") +
           vm("va", "portGroup: mig") + vm("vb", "portGroup: mig, niocClass: management");
  };
  const std::string v1 = manifest(m(", niocClass: vmotion"), "v1.yaml");
  auto r = vnetplan("plan -f " + v1);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("niocClass"), std::string::npos) << r.out;
  r = vnetplan("apply -f " + v1 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0);
  EXPECT_NE(nft("list table bridge vnp-nioc-va").find("meta priority set 1:11"), std::string::npos)
      << "va is in its group's class, vmotion";
  EXPECT_NE(nft("list table bridge vnp-nioc-vb").find("meta priority set 1:12"), std::string::npos)
      << "vb's own class, management, wins over its group's";
  auto shown = vnetplan("show --target t1 -f " + v1);
  ASSERT_EQ(shown.exitCode, 0) << shown.err;
  auto p = vnetplan("plan --detailed-exitcode -f " + manifest(target() + shown.out, "shown.yaml"));
  EXPECT_EQ(p.exitCode, 0) << p.out << p.err << shown.out;
  // The group's class taken away: va goes back to virtualmachine (no rule), vb keeps its own.
  const std::string v2 = manifest(m(""), "v2.yaml");
  r = vnetplan("apply -f " + v2 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v2).exitCode, 0);
  EXPECT_EQ(nft("list tables").find("vnp-nioc-va"), std::string::npos);
  EXPECT_NE(nft("list table bridge vnp-nioc-vb").find("meta priority set 1:12"), std::string::npos);
  // A class the switch does not divide the uplink for, set on the group: a plan error at the group's field.
  r = vnetplan("plan -f " + manifest(m(", niocClass: nfs"), "nfs.yaml"));
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.err.find("linux: t1/Port/va: niocClass nfs: its switch br0's nioc has no class nfs"), std::string::npos)
      << r.err;
}

// Mirror with tc (clsact + u32 match-all + mirred) proven with real frames captured on the destination: unicast between
// two VMs reaches the mirror port only while the mirror copies it, in the direction asked for. Then the lifecycle:
// empty second plan, show round trip, drift (a filter deleted by hand) repaired, update in place, rollback after
// failures injected at the step and at the commit (exact pre-image of qdiscs, filters and records), prune.
TEST_F(CliLinuxNetModes, MirrorCopiesFramesToTheDestination) {
  const std::string A = "52:54:00:aa:00:01", B = "52:54:00:bb:00:01", C = "52:54:00:cc:00:01";
  const std::string a = vmNs("ma"), b = vmNs("mb"), c = vmNs("mc");
  auto m = [&](const std::string& mirror) {
    std::string y = target() + doc("kind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1]}\n");
    for (auto [name, n, mac] : {std::tuple{"ma", a, A}, std::tuple{"mb", b, B}, std::tuple{"mc", c, C}})
      y += doc(std::string("kind: Port\nmetadata: {name: ") + name + "}\nspec: {targets: [t1], type: veth, switch: br0, "
               "peer: eth0, peerNetns: " + n + ", linux: {peerMac: \"" + mac + "\"}}\n");
    if (!mirror.empty())
      y += doc("kind: Mirror\nmetadata: {name: span1}\nspec: {targets: [t1], switch: br0, destination: {port: mc}, " +
               mirror + "}\n");
    return y;
  };
  // What mc sees of unicast between ma and mb (the bridge has learned both MACs first, so none of it floods).
  auto captured = [&] {
    sendFrame(a, "eth0", "ff:ff:ff:ff:ff:ff", A, "learn-a");
    sendFrame(b, "eth0", "ff:ff:ff:ff:ff:ff", B, "learn-b");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    FrameSink atC(c, "eth0");
    sendFrame(a, "eth0", B, A, "a-to-b");
    sendFrame(b, "eth0", A, B, "b-to-a");
    std::string got = atC.payloads();
    return std::make_pair(got.find("a-to-b\n") != std::string::npos, got.find("b-to-a\n") != std::string::npos);
  };
  const std::string none = manifest(m(""), "none.yaml");
  auto r = vnetplan("apply -f " + none + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  for (const auto& n : {a, b, c}) nsIp(n, "link set eth0 up");
  EXPECT_EQ(captured(), std::make_pair(false, false)) << "known unicast does not reach a third port";
  const std::string atNone = snapshot();

  const std::string both = manifest(m("source: {ports: [ma]}"), "both.yaml");
  // A failure at the mirror's step, and at the commit: nothing of it stays.
  for (const std::string env : {"VNETPLAN_FAIL_AT_STEP=1", "VNETPLAN_FAIL_AT_FLUSH=1"}) {
    auto f = failing(env, both);
    ASSERT_EQ(f.exitCode, 1) << env << "\n" << f.out << f.err;
    EXPECT_EQ(snapshot(), atNone) << env;
  }
  r = vnetplan("apply -f " + both + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + both).exitCode, 0);
  {
    auto shown = vnetplan("show --target t1 -f " + both);
    ASSERT_EQ(shown.exitCode, 0) << shown.err;
    EXPECT_NE(shown.out.find("kind: Mirror"), std::string::npos) << shown.out;
    auto p = vnetplan("plan --detailed-exitcode -f " + manifest(target() + shown.out, "shown.yaml"));
    EXPECT_EQ(p.exitCode, 0) << p.out << p.err << shown.out;
  }
  EXPECT_EQ(captured(), std::make_pair(true, true)) << "both directions of ma copied to mc";
  const std::string atBoth = snapshot();

  // Drift: the egress filter deleted by hand shows as direction ingress; the apply puts it back.
  ASSERT_EQ(std::system(("ip netns exec " + ns + " tc filter del dev ma egress").c_str()), 0);
  r = vnetplan("plan -f " + both);
  EXPECT_NE(r.out.find("source.direction"), std::string::npos) << r.out;
  ASSERT_EQ(vnetplan("apply -f " + both + " --auto-approve").exitCode, 0);
  EXPECT_EQ(snapshot(), atBoth);

  // Update in place: ingress only, of ma and mb; failures on the way roll back to `both` exactly.
  const std::string ingress = manifest(m("source: {ports: [ma, mb], direction: ingress}"), "ingress.yaml");
  for (const std::string env : {"VNETPLAN_FAIL_AT_STEP=1", "VNETPLAN_FAIL_AT_FLUSH=1"}) {
    auto f = failing(env, ingress);
    ASSERT_EQ(f.exitCode, 1) << env << "\n" << f.out << f.err;
    EXPECT_EQ(snapshot(), atBoth) << env;
  }
  r = vnetplan("apply -f " + ingress + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("0 to destroy, 0 to replace"), std::string::npos) << r.out;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + ingress).exitCode, 0);
  EXPECT_EQ(captured(), std::make_pair(true, true)) << "what ma and mb send";
  std::string tc = runShell("ip netns exec " + ns + " tc filter show dev ma egress", dir).out;
  EXPECT_EQ(tc.find("mirred"), std::string::npos) << tc;
  tc = runShell("ip netns exec " + ns + " tc filter show dev mb ingress", dir).out;
  EXPECT_NE(tc.find("Egress Mirror to device mc"), std::string::npos) << tc;

  // Replace (another destination), then prune: the clsact qdiscs and the record go with it.
  const std::string toB = manifest(
      std::regex_replace(m("source: {ports: [ma], direction: egress}"), std::regex("port: mc"), "port: mb"), "tob.yaml");
  r = vnetplan("apply -f " + toB + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 to replace"), std::string::npos) << r.out;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + toB).exitCode, 0);
  r = vnetplan("apply -f " + none + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(snapshot(), atNone);
  EXPECT_EQ(captured(), std::make_pair(false, false));

  // A destination that is also a source: a plan-time error naming the field.
  r = vnetplan("plan -f " + manifest(m("source: {ports: [ma, mc]}"), "loop.yaml"));
  EXPECT_NE(r.err.find("linux: t1/Mirror/span1: destination.port mc is also a source port"), std::string::npos) << r.err;
}

// Security and shaping, rolled back after a failure injected at every step and at the commit of the nftables
// batch: the exact pre-image (every port's table or its absence, every TBF or its absence), for a create from
// nothing and for an update that changes, lifts and adds policies. Then replace (a tap becomes a veth of the same
// name, keeping its inherited policy) and prune.
TEST_F(CliLinuxNetModes, PolicyRollbackRestoresThePreImage) {
  const std::string A = "52:54:00:aa:00:01", B = "52:54:00:bb:00:01", D = "52:54:00:dd:00:01";
  auto port = [&](const std::string& name, const std::string& type, const std::string& mac, const std::string& extra) {
    const std::string macField = type == "tap" ? "mac: \"" + mac + "\"" : "peer: " + name + "-p, linux: {peerMac: \"" + mac + "\"}";
    return doc("kind: Port\nmetadata: {name: " + name + "}\nspec: {targets: [t1], type: " + type + ", switch: br0, " +
               macField + extra + "}\n");
  };
  const std::string sw = doc("kind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1], security: {allowForgedTransmits: "
                             "false, allowMacChanges: false}, shaping: {averageKbps: 20000, burstKiB: 64}}\n");
  const std::string v1 = manifest(target() + sw + port("pa", "veth", A, "") + port("pb", "tap", B, ""), "v1.yaml");
  const std::string v2 = manifest(
      target() + sw +
          port("pa", "veth", A, ", security: {allowForgedTransmits: true, allowMacChanges: true}, shaping: {averageKbps: 5000, "
                                "peakKbps: 10000, burstKiB: 32}") +
          port("pb", "tap", B, ", security: {allowMacChanges: true}") + port("pd", "veth", D, ""),
      "v2.yaml");
  const std::string empty = snapshot();
  for (const std::string env : {"VNETPLAN_FAIL_AT_STEP=2", "VNETPLAN_FAIL_AT_STEP=3", "VNETPLAN_FAIL_AT_FLUSH=1"}) {
    auto f = failing(env, v1);
    ASSERT_EQ(f.exitCode, 1) << env << "\n" << f.out << f.err;
    EXPECT_NE(f.err.find("Rolled back"), std::string::npos) << f.err;
    EXPECT_EQ(snapshot(), empty) << env;
  }
  auto r = vnetplan("apply -f " + v1 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0);
  const std::string atV1 = snapshot();
  for (const char* t : {"bridge vnp-port-pa", "bridge vnp-port-pb"}) EXPECT_NE(atV1.find(t), std::string::npos) << t;

  for (const std::string env : {"VNETPLAN_FAIL_AT_STEP=1", "VNETPLAN_FAIL_AT_STEP=2", "VNETPLAN_FAIL_AT_STEP=3",
                                "VNETPLAN_FAIL_AT_FLUSH=1"}) {
    auto f = failing(env, v2);
    ASSERT_EQ(f.exitCode, 1) << env << "\n" << f.out << f.err;
    EXPECT_NE(f.err.find("Rolled back"), std::string::npos) << f.err;
    EXPECT_EQ(snapshot(), atV1) << env;
    EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v1).exitCode, 0) << env;
  }
  r = vnetplan("apply -f " + v2 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v2).exitCode, 0);
  const std::string atV2 = snapshot();
  EXPECT_EQ(atV2.find("vnp-port-pa"), std::string::npos) << atV2;
  EXPECT_NE(atV2.find("vnp-port-pd"), std::string::npos) << atV2;
  EXPECT_NE(runShell("ip netns exec " + ns + " tc qdisc show dev pa", dir).out.find("rate 5Mbit burst 32Kb peakrate 10Mbit"),
            std::string::npos);
  // pb keeps allowForgedTransmits: false (inherited) with allowMacChanges lifted on the port.
  std::string pb = runShell("ip netns exec " + ns + " nft list table bridge vnp-port-pb", dir).out;
  EXPECT_NE(pb.find("allowForgedTransmits: false"), std::string::npos) << pb;
  EXPECT_EQ(pb.find("allowMacChanges: false"), std::string::npos) << pb;

  // Replace: pb becomes a veth (the type cannot change in place); the inherited policy follows it.
  const std::string v3 = manifest(target() + sw + port("pa", "veth", A, "") + port("pb", "veth", B, ""), "v3.yaml");
  r = vnetplan("apply -f " + v3 + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 to replace"), std::string::npos) << r.out;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + v3).exitCode, 0);
  pb = runShell("ip netns exec " + ns + " nft list table bridge vnp-port-pb", dir).out;
  EXPECT_NE(pb.find("allowMacChanges: false"), std::string::npos) << pb;
  EXPECT_NE(runShell("ip netns exec " + ns + " tc qdisc show dev pb", dir).out.find("tbf"), std::string::npos);

  // Prune: every table and qdisc goes with its port.
  r = vnetplan("apply -f " + manifest(target(), "empty.yaml") + " --auto-approve");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list ruleset", dir).out, "");
  EXPECT_EQ(snapshot(), empty);
}
