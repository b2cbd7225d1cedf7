// esxcli, as vnetplan's ESXi provider meets it over SSH: an emulator of the `network` namespace of ESXi's esxcli
// that keeps the host's configuration in a JSON file (env ESXCLI_STATE). scripts/esxi-sandbox.sh puts it on the
// PATH of a real OpenSSH server's sessions.
//
//   esxcli [--formatter=xml|csv|keyvalue] NAMESPACE... COMMAND [OPTIONS]   (as on ESXi)
//   esxcli --emulator-init STATE [--nics N] [--ip ADDR] [--netmask MASK]   a freshly installed host
//
// Every invocation is one short process (a plan runs dozens per SSH exec), so startup does no more than read one
// small JSON file. Each holds an exclusive flock for its whole run -- on STATE.lock, never on STATE itself, which
// is replaced by rename and so would leave a waiting process holding a lock on the old file -- so concurrent
// invocations serialize and none loses another's update. Test hooks: see hooks.h.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/esxi/emulator/cli.h"
#include "tests/esxi/emulator/hooks.h"

using namespace esxemu;

namespace {

class StateLock {
 public:
  explicit StateLock(std::string path) : path_(std::move(path)) { acquire(); }
  ~StateLock() { release(); }
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;
  void acquire() {
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0 || flock(fd_, LOCK_EX) != 0) {
      std::fprintf(stderr, "esxcli emulator: cannot lock %s: %s\n", path_.c_str(), std::strerror(errno));
      std::exit(1);
    }
  }
  void release() {
    if (fd_ >= 0) close(fd_);  // closing the only descriptor drops the flock
    fd_ = -1;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

Host loadState(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + " (run esxcli --emulator-init " + path + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return fromJson(Json::parse(ss.str()));
}

void saveState(const std::string& path, const Host& h) {
  // temp + rename: a reader (a test, or an invocation that does not lock) sees the old file or the new one.
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << toJson(h).dump(1, ' ', false, Json::error_handler_t::replace) << "\n";
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + ": " + std::strerror(errno));
}

void writeAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;  // the reader is gone: nothing more to say
    off += static_cast<size_t>(n);
  }
}

int emulatorInit(const std::vector<std::string>& args) {
  if (args.size() < 2) {
    std::fprintf(stderr, "usage: esxcli --emulator-init STATE [--nics N] [--ip ADDR] [--netmask MASK]\n");
    return 2;
  }
  const std::string path = args[1];
  int nics = 4;
  std::string ip = "10.0.0.10", mask = "255.255.255.0";
  for (size_t i = 2; i < args.size(); ++i) {
    if (i + 1 >= args.size()) {
      std::fprintf(stderr, "esxcli --emulator-init: %s needs a value\n", args[i].c_str());
      return 2;
    }
    if (args[i] == "--nics")
      nics = std::atoi(args[++i].c_str());
    else if (args[i] == "--ip")
      ip = args[++i];
    else if (args[i] == "--netmask")
      mask = args[++i];
    else {
      std::fprintf(stderr, "esxcli --emulator-init: unknown option %s\n", args[i].c_str());
      return 2;
    }
  }
  if (nics < 1 || nics > 64) {
    std::fprintf(stderr, "esxcli --emulator-init: --nics must be 1..64\n");
    return 2;
  }
  unsigned seed = 2166136261U;  // FNV-1a of the path: each sandbox's host gets its own MACs
  for (unsigned char c : path) seed = (seed ^ c) * 16777619U;
  StateLock lock(path + ".lock");
  saveState(path, freshHost(nics, ip, mask, seed));
  return 0;
}

// Global options come before the namespace (V: "esxcli --formatter=xml network ..."). Returns how many
// arguments they took.
size_t parseGlobals(const std::vector<std::string>& args, Formatter& fmt) {
  size_t i = 0;
  for (; i < args.size() && args[i].rfind("--", 0) == 0; ++i) {
    std::string value;
    if (args[i].rfind("--formatter=", 0) == 0) {
      value = args[i].substr(12);
    } else if (args[i] == "--formatter") {
      if (i + 1 >= args.size()) throw EsxError("Error: Missing value for option --formatter");
      value = args[++i];
    } else if (args[i] == "--debug") {
      continue;  // accepted, no effect
    } else {
      throw EsxError("Error: Invalid option " + args[i]);
    }
    if (value == "xml")
      fmt = Formatter::Xml;
    else if (value == "csv")
      fmt = Formatter::Csv;
    else if (value == "keyvalue")
      fmt = Formatter::KeyValue;
    else
      throw EsxError("Error: Unknown formatter '" + value + "'. Valid formatters are: xml, csv, keyvalue");  // [R]
  }
  return i;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "--emulator-init") return emulatorInit(args);

  const char* statePath = std::getenv("ESXCLI_STATE");
  if (!statePath || !*statePath) {
    std::fprintf(stderr, "esxcli emulator: ESXCLI_STATE (the state file) is not set\n");
    return 1;
  }
  StateLock lock(std::string(statePath) + ".lock");
  logInvocation(args);
  const std::optional<Fault> fault = faultFor(args);
  if (fault && fault->action == "hang") {
    lock.release();  // a hung command must not stall the host's other sessions
    if (!hangWhileConnected(fault->seconds)) return 1;
    lock.acquire();
  }
  if (fault && fault->action == "fail" && !fault->after) {
    lock.release();
    writeAll(STDOUT_FILENO, fault->message + "\n");
    return fault->exitCode.value_or(1);
  }

  std::string out;
  int rc = 0;
  try {
    Formatter fmt = Formatter::Human;
    const size_t nglobal = parseGlobals(args, fmt);
    Parsed p = parseCommand(std::vector<std::string>(args.begin() + static_cast<long>(nglobal), args.end()));
    if (!p.cmd) {
      out = p.output;
    } else {
      Host host = loadState(statePath);
      Context ctx{host, p.options, {}, false};
      p.cmd->handler(ctx);
      if (ctx.modified) saveState(statePath, host);
      out = render(ctx.result, fmt);
    }
  } catch (const EsxError& e) {
    // esxcli prints its errors on stdout, where a batch's per-command status lines are too [R].
    out = std::string(e.what()) + "\n";
    rc = 1;
  } catch (const std::exception& e) {
    lock.release();
    std::fprintf(stderr, "esxcli emulator: %s\n", e.what());
    return 2;
  }
  lock.release();

  if (fault && fault->action == "fail") {  // "when": "after": the change is made, the caller told it failed
    out = fault->message + "\n";
    rc = fault->exitCode.value_or(1);
  } else if (fault && fault->action == "garbage") {
    out = fault->output.value_or("\x01\x02<!DOCTYPE garbage>{{{ structure[0].Bogus = \xff\xfe\n");
    rc = fault->exitCode.value_or(0);
  } else if (fault && fault->action == "truncate") {
    out = out.substr(0, static_cast<size_t>(fault->bytes.value_or(static_cast<long long>(out.size() / 2))));
    rc = fault->exitCode.value_or(0);
  }
  writeAll(STDOUT_FILENO, out);
  return rc;
}
