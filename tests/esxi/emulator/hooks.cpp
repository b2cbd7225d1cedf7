#include "tests/esxi/emulator/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

namespace esxemu {

using Json = nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool readFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (size_t i = 0; i < args.size(); ++i) s += (i ? " " : "") + args[i];
  return s;
}

// Written under the state lock, so a plain rewrite is safe from other invocations; temp + rename keeps a reader
// (a test) from ever seeing half a file.
void writeCounts(const std::string& path, const Json& counts) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << counts.dump() << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

void logInvocation(const std::vector<std::string>& args) {
  const std::string path = env("ESXCLI_LOG");
  if (path.empty()) return;
  std::string line = Json(args).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t n = write(fd, line.data(), line.size());
  (void)n;
  close(fd);
}

static std::optional<Fault> matchRules(const std::string& path, const std::vector<std::string>& args);

std::optional<Fault> faultFor(const std::vector<std::string>& args) {
  const std::string path = env("ESXCLI_FAULTS");
  if (path.empty()) return std::nullopt;
  try {
    return matchRules(path, args);
  } catch (const std::exception& e) {  // a rule with a field of the wrong type
    Fault f;
    f.action = "fail";
    f.message = "esxcli emulator: bad fault rule in " + path + ": " + e.what();
    f.exitCode = 3;
    return f;
  }
}

static std::optional<Fault> matchRules(const std::string& path, const std::vector<std::string>& args) {
  std::string text;
  if (!readFile(path, text)) return std::nullopt;
  bool blank = true;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) blank = false;
  if (blank) return std::nullopt;

  Json rules = Json::parse(text, nullptr, false);
  if (rules.is_object() && rules.contains("rules")) rules = rules["rules"];
  if (!rules.is_array()) {
    Fault f;
    f.action = "fail";
    f.message = "esxcli emulator: " + path + " is not a JSON array of fault rules";
    f.exitCode = 3;
    return f;
  }
  const std::string countsPath = path + ".counts";
  std::string countsText;
  Json counts = readFile(countsPath, countsText) ? Json::parse(countsText, nullptr, false) : Json::object();
  if (!counts.is_object()) counts = Json::object();

  const std::string line = joined(args);
  std::optional<Fault> fired;
  bool counted = false;
  for (const Json& r : rules) {
    if (!r.is_object()) continue;
    const std::string match = r.value("match", "");
    if (line.find(match) == std::string::npos) continue;
    const std::string id = r.dump();
    const long long n = counts.value(id, 0LL) + 1;
    counts[id] = n;
    counted = true;
    if (fired) continue;  // later rules still count this invocation
    const long long nth = r.value("nth", 0LL);
    const long long count = r.value("count", nth > 0 ? 1LL : -1LL);
    const long long from = nth > 0 ? nth : 1;
    if (n < from || (count >= 0 && n >= from + count)) continue;
    Fault f;
    f.action = r.value("action", "fail");
    if (f.action != "fail" && f.action != "hang" && f.action != "garbage" && f.action != "truncate")
      throw std::runtime_error("unknown action \"" + f.action + "\" (fail, hang, garbage or truncate)");
    f.message = r.value("message", "esxcli emulator: injected failure");
    if (r.contains("exitCode")) f.exitCode = r["exitCode"].get<int>();
    f.after = r.value("when", "before") == "after";
    f.seconds = r.value("seconds", 3600.0);
    if (r.contains("output")) f.output = r["output"].get<std::string>();
    if (r.contains("bytes")) f.bytes = r["bytes"].get<long long>();
    fired = f;
  }
  if (counted) writeCounts(countsPath, counts);
  return fired;
}

bool hangWhileConnected(double seconds) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  while (clock::now() < deadline) {
    // events = 0: only POLLERR/POLLHUP are reported -- the reading end of our stdout (sshd) has gone away.
    pollfd p{STDOUT_FILENO, 0, 0};
    if (poll(&p, 1, 100) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL))) return false;
  }
  return true;
}

}  // namespace esxemu
