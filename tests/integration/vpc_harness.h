// End-to-end tests of the vpc provider: the vnetplan binary against a real neutron-server (neutron_harness.h),
// with the test's own JSON client for independent reads and out-of-band changes, and a fault-injecting proxy
// (NeutronProxy) that sits between vnetplan and the real server to play a hostile peer: scripted 409/500/429
// answers, delays past the client's timeout, bodies that are not JSON, a server that goes away mid-apply.
//
//   class MyVpc : public vnptest::VpcCliTest {};
//   TEST_F(MyVpc, X) {
//     auto f = manifest(target() + doc("Vpc", "shop", "natGateway: false"));
//     ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
//     Json router = routerOf("shop");       // found by vnetplan's address tag, read straight from Neutron
//   }
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <regex>
#include <set>

#include "tests/integration/neutron_harness.h"

namespace vnptest {

// An HTTP proxy on 127.0.0.1 in front of `upstream` (the real neutron-server), answering as it is scripted to.
class NeutronProxy {
 public:
  enum class Act {
    Reply,           // answer `status` + `body` (+ Retry-After) without asking the server
    ForwardThenReply,  // let the server do it, then answer `status` + `body` instead of its reply
    Delay,           // wait `ms`, then forward
    ForwardThenHang,  // let the server do it, then answer nothing for `ms` (the client times out)
    ForwardThenDie,  // let the server do it, stop listening for `ms` (connections refused), answer nothing
  };
  struct Fault {
    std::string method;
    std::regex path;   // matched against the path with its query
    int nth = 1;       // the nth matching request (1-based); 0 = every one
    Act act = Act::Reply;
    int status = 500;
    std::string body;
    std::string retryAfter;
    int ms = 0;
    int seen = 0;
    int fired = 0;
  };

  // With cert and key (PEM files), the proxy speaks HTTPS: a TLS front of the real server.
  explicit NeutronProxy(std::string upstream, std::string cert = "", std::string key = "")
      : upstream_(std::move(upstream)), cert_(std::move(cert)), key_(std::move(key)) {
    // A free port, kept across restarts. Found with a plain socket, closed at once: an httplib::Server that never
    // listened keeps its socket open when destroyed, and as httplib sets SO_REUSEPORT that stale listener would
    // take (and never answer) part of the connections meant for the proxy.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
    if (fd >= 0) ::close(fd);
    start();
  }
  ~NeutronProxy() {
    // Stopped outside mu_: the handlers still running take it.
    std::vector<std::unique_ptr<httplib::Server>> servers;
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      servers.swap(servers_);
      threads.swap(threads_);
    }
    for (auto& s : servers) s->stop();
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }

  std::string url() const { return (cert_.empty() ? "http://" : "https://") + std::string("127.0.0.1:") + std::to_string(port_); }
  void add(Fault f) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_.push_back(std::move(f));
  }
  int fired(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return i < faults_.size() ? faults_[i].fired : 0;
  }
  // Requests seen, as "METHOD PATH" (path without the query).
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

 private:
  void start() {
    std::unique_ptr<httplib::Server> svr;
    if (cert_.empty()) svr = std::make_unique<httplib::Server>();
    else svr = std::make_unique<httplib::SSLServer>(cert_.c_str(), key_.c_str());
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    svr->Get(".*", handler);
    svr->Post(".*", handler);
    svr->Put(".*", handler);
    svr->Delete(".*", handler);
    svr->set_read_timeout(30, 0);
    svr->set_write_timeout(30, 0);
    httplib::Server* raw = svr.get();
    for (int i = 0; i < 200 && !raw->bind_to_port("127.0.0.1", port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([raw] { raw->listen_after_bind(); });
    servers_.push_back(std::move(svr));
  }

  httplib::Result forward(const httplib::Request& req) {
    httplib::Client c(upstream_);
    c.set_read_timeout(60, 0);
    std::string target = req.path;
    if (!req.params.empty()) {
      std::string q;
      for (const auto& [k, v] : req.params) q += (q.empty() ? "?" : "&") + urlEncode(k) + "=" + urlEncode(v);
      target += q;
    }
    httplib::Headers h;
    for (const auto& [k, v] : req.headers)
      if (k == "X-Auth-Token" || k == "If-Match" || k == "Content-Type") h.emplace(k, v);
    if (req.method == "GET") return c.Get(target.c_str(), h);
    if (req.method == "DELETE") return c.Delete(target.c_str(), h);
    if (req.method == "POST") return c.Post(target.c_str(), h, req.body, "application/json");
    return c.Put(target.c_str(), h, req.body, "application/json");
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    std::string full = req.path;
    for (const auto& [k, v] : req.params) full += (full == req.path ? "?" : "&") + k + "=" + v;
    std::optional<Fault> hit;
    {
      std::lock_guard<std::mutex> lock(mu_);
      log_.push_back(req.method + " " + req.path);
      for (auto& f : faults_) {
        if (f.method != req.method || !std::regex_search(full, f.path)) continue;
        ++f.seen;
        if (f.nth == 0 || f.seen == f.nth) {
          ++f.fired;
          hit = f;
          break;
        }
      }
    }
    auto pass = [&](const httplib::Result& r) {
      if (!r) {
        res.status = 502;
        res.set_content("proxy: upstream failed", "text/plain");
        return;
      }
      res.status = r->status;
      res.set_content(r->body, r->get_header_value("Content-Type").empty() ? "application/json"
                                                                             : r->get_header_value("Content-Type"));
    };
    if (!hit) return pass(forward(req));
    const Fault& f = *hit;
    switch (f.act) {
      case Act::Reply:
        res.status = f.status;
        if (!f.retryAfter.empty()) res.set_header("Retry-After", f.retryAfter);
        res.set_content(f.body, "application/json");
        return;
      case Act::ForwardThenReply:
        (void)forward(req);
        res.status = f.status;
        res.set_content(f.body, "application/json");
        return;
      case Act::Delay:
        std::this_thread::sleep_for(std::chrono::milliseconds(f.ms));
        return pass(forward(req));
      case Act::ForwardThenHang:
        (void)forward(req);
        std::this_thread::sleep_for(std::chrono::milliseconds(f.ms));
        res.status = 504;
        return;
      case Act::ForwardThenDie: {
        (void)forward(req);
        httplib::Server* current;
        {
          std::lock_guard<std::mutex> lock(mu_);
          current = servers_.back().get();
        }
        current->stop();  // new connections are refused from now on
        std::this_thread::sleep_for(std::chrono::milliseconds(f.ms));
        start();  // back on the same port
        res.status = 504;
        return;
      }
    }
  }

  std::string upstream_, cert_, key_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<Fault> faults_;
  std::vector<std::string> log_;
  std::vector<std::unique_ptr<httplib::Server>> servers_;
  std::vector<std::thread> threads_;
};

class VpcCliTest : public NeutronTest {
 protected:
  void SetUp() override {
    NeutronTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    endpoint = neutronSandbox->fact("URL");
  }

  // The Target: the sandbox (or a proxy in front of it) without authentication, in this test's project.
  std::string target(const std::string& extra = "") const {
    return "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: cloud}\nspec: {provider: vpc, endpoint: \"" +
           endpoint + "\", auth: noauth, project: \"" + project + "\", physicalNetwork: physnet1" + extra + "}\n";
  }
  static std::string doc(const std::string& kind, const std::string& name, const std::string& spec) {
    return "---\napiVersion: vnetplan.io/v1\nkind: " + kind + "\nmetadata: {name: " + name +
           "}\nspec: {targets: [cloud]" + (spec.empty() ? "" : ", " + spec) + "}\n";
  }
  std::string manifest(const std::string& yaml, const std::string& file = "vpc.yaml") {
    fs::path p = dir / file;
    writeFile(p, yaml);
    return p.string();
  }
  RunResult vnp(const std::string& args, const std::string& env = "") {
    return runShell(env + " " + std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() + " " + args,
                    dir, 240);
  }

  // The cloud's external network "public" (flat, router:external) with a subnet for router gateways.
  Json externalNetwork(const std::string& name = "public") {
    Json net = create("networks", {{"name", name},
                                   {"router:external", true},
                                   {"provider:network_type", "flat"},
                                   {"provider:physical_network", neutronSandbox->fact("FLAT_PHYSNET")}});
    if (net.is_null()) return net;
    create("subnets", {{"network_id", net["id"]}, {"cidr", "198.51.100.0/24"}, {"ip_version", 4}, {"enable_dhcp", false}});
    return net;
  }

  // Objects of `collection` carrying vnetplan's address tag for ADDRESS ("cloud/Vpc/shop").
  std::vector<Json> tagged(const std::string& collection, const std::string& address) {
    return list(collection, "project_id=" + project + "&tags=" + urlEncode("vnetplan:address=" + address));
  }
  Json one(const std::string& collection, const std::string& address) {
    auto l = tagged(collection, address);
    if (l.size() != 1) {
      if (!l.empty()) ADD_FAILURE() << l.size() << " " << collection << " tagged " << address;
      return nullptr;
    }
    return l[0];
  }
  Json routerOf(const std::string& vpc) { return one("routers", "cloud/Vpc/" + vpc); }
  Json networkOf(const std::string& subnet) { return one("networks", "cloud/Subnet/" + subnet); }
  Json subnetOf(const std::string& subnet) { return one("subnets", "cloud/Subnet/" + subnet); }
  Json groupOf(const std::string& group) { return one("security-groups", "cloud/SecurityGroup/" + group); }
  // Router interface ports of a router.
  std::vector<Json> interfaces(const Json& router) {
    return list("ports", "device_owner=network%3Arouter_interface&device_id=" + router["id"].get<std::string>());
  }
  bool attached(const Json& router, const Json& subnet) {
    for (const auto& p : interfaces(router))
      for (const auto& ip : p["fixed_ips"])
        if (ip["subnet_id"] == subnet["id"]) return true;
    return false;
  }

  // Everything of this project as Neutron holds it, without what changes when an object is re-created (ids,
  // times, revisions), for exact before/after comparisons.
  std::string cloudSnapshot() {
    std::vector<std::string> lines;
    auto strip = [](Json o) {
      for (const char* k : {"id", "created_at", "updated_at", "revision_number", "standard_attr_id", "network_id",
                            "subnets", "port_id", "gw_port_id", "subnet_id", "security_group_id", "remote_group_id",
                            "device_id", "mac_address", "status", "external_fixed_ips", "fixed_ips",
                            "subnetpool_id", "dns_name", "binding:host_id"})
        o.erase(k);
      if (o.contains("external_gateway_info") && o["external_gateway_info"].is_object())
        o["external_gateway_info"].erase("external_fixed_ips");
      if (o.contains("tags") && o["tags"].is_array()) {
        auto t = o["tags"].get<std::vector<std::string>>();
        std::sort(t.begin(), t.end());
        o["tags"] = t;
      }
      if (o.contains("routes") && o["routes"].is_array()) {
        auto r = o["routes"].get<std::vector<Json>>();
        std::sort(r.begin(), r.end());
        o["routes"] = r;
      }
      if (o.contains("security_group_rules") && o["security_group_rules"].is_array()) {
        std::vector<std::string> rules;
        for (auto rule : o["security_group_rules"]) {
          for (const char* k : {"id", "created_at", "updated_at", "revision_number", "standard_attr_id",
                                "security_group_id", "remote_group_id"})
            rule.erase(k);
          rules.push_back(rule.dump());
        }
        std::sort(rules.begin(), rules.end());
        o["security_group_rules"] = rules;
      }
      return o.dump();
    };
    for (const char* c : {"routers", "networks", "subnets", "security-groups", "ports"})
      for (const auto& o : list(c, "project_id=" + project)) {
        // Neutron makes a project's "default" group itself, with the project's first security group; it is
        // nobody's change to undo (that vnetplan leaves such untagged objects alone is tested on its own).
        if (std::string(c) == "security-groups" && o.value("name", "") == "default" &&
            o.value("tags", Json::array()).empty())
          continue;
        lines.push_back(std::string(c) + " " + strip(o));
      }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }

  std::string endpoint;  // what the Target points at (the sandbox, or a proxy in front of it)
};

}  // namespace vnptest
