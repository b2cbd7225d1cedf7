#include "providers/esxi/ssh.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <libssh/libssh.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "base/dynlib.h"

namespace vnetplan::esxi {

namespace {

// libssh (and the Kerberos libraries it needs) is opened on the first SSH connection (base/dynlib.h): runs
// without an ESXi target never load it.
#define SSH_FUNCTIONS(X) \
  X(ssh_channel_close) X(ssh_channel_free) X(ssh_channel_get_exit_status) X(ssh_channel_is_eof) X(ssh_channel_new) \
  X(ssh_channel_open_session) X(ssh_channel_poll_timeout) X(ssh_channel_read_nonblocking) \
  X(ssh_channel_request_exec) X(ssh_channel_send_eof) X(ssh_channel_write) X(ssh_clean_pubkey_hash) X(ssh_connect) \
  X(ssh_disconnect) X(ssh_free) X(ssh_get_error) X(ssh_get_fingerprint_hash) X(ssh_get_publickey_hash) \
  X(ssh_get_server_publickey) X(ssh_is_connected) X(ssh_key_free) X(ssh_key_type) X(ssh_key_type_to_char) \
  X(ssh_new) X(ssh_options_set) X(ssh_pki_export_privkey_to_pubkey) X(ssh_pki_import_privkey_file) \
  X(ssh_send_ignore) X(ssh_session_is_known_server) X(ssh_session_update_known_hosts) X(ssh_string_free_char) \
  X(ssh_userauth_agent) X(ssh_userauth_publickey)
VNP_DYNLIB_TABLE(Ssh, "libssh.so.4", SSH_FUNCTIONS)
const Ssh& lib() { return Ssh::get(); }

constexpr auto kKeepaliveEvery = std::chrono::seconds(15);
constexpr size_t kMaxStderr = 64 * 1024;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string homeDir() {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return "/";
}

std::string localUserName() {
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_name) return pw->pw_name;
  if (const char* u = std::getenv("USER"); u && *u) return u;
  return "root";
}

std::string expandTilde(const std::string& p, const std::string& home) {
  if (p == "~") return home;
  if (p.rfind("~/", 0) == 0) return home + p.substr(1);
  return p;
}

// ssh_config(5) line: a keyword, then arguments separated by whitespace ("Keyword=value" and "Keyword = value"
// too); "quoted words" keep their spaces; a word starting with '#' starts a comment.
std::vector<std::string> configWords(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  auto skip = [&] {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  };
  skip();
  if (i >= line.size() || line[i] == '#') return out;
  size_t start = i;
  while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i])) && line[i] != '=') ++i;
  out.push_back(line.substr(start, i - start));
  skip();
  if (i < line.size() && line[i] == '=') {
    ++i;
    skip();
  }
  while (i < line.size() && line[i] != '#') {
    if (line[i] == '"') {
      size_t end = line.find('"', i + 1);
      if (end == std::string::npos) end = line.size();
      out.push_back(line.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      start = i;
      while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      out.push_back(line.substr(start, i - start));
    }
    skip();
  }
  return out;
}

// Host patterns: any positive pattern matches and no negated one does (ssh_config(5)).
bool hostMatches(const std::vector<std::string>& patterns, const std::string& alias) {
  bool any = false;
  for (const auto& p : patterns) {
    if (p.empty()) continue;
    bool neg = p[0] == '!';
    std::string pat = lower(neg ? p.substr(1) : p);
    if (fnmatch(pat.c_str(), lower(alias).c_str(), 0) == 0) {
      if (neg) return false;
      any = true;
    }
  }
  return any;
}

std::string expandTokens(const std::string& s, const std::map<char, std::string>& tokens) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 1 < s.size()) {
      char t = s[++i];
      if (t == '%') out += '%';
      else if (auto it = tokens.find(t); it != tokens.end()) out += it->second;
      else out += std::string("%") + t;
      continue;
    }
    out += s[i];
  }
  return out;
}

// Wipes a secret held in a std::string before it is freed.
void wipe(std::string& s) {
  volatile char* p = s.data();
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
  s.clear();
}

struct KeyFree {
  void operator()(ssh_key k) const { lib().ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

// "ED25519 key SHA256:abc..." of a public key.
std::string fingerprintOf(ssh_key key, std::string* fpOnly = nullptr) {
  unsigned char* hash = nullptr;
  size_t hlen = 0;
  if (lib().ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != SSH_OK) return "(no fingerprint)";
  char* fp = lib().ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
  lib().ssh_clean_pubkey_hash(&hash);
  std::string f = fp ? fp : "";
  lib().ssh_string_free_char(fp);
  if (fpOnly) *fpOnly = f;
  const char* type = lib().ssh_key_type_to_char(lib().ssh_key_type(key));
  std::string t = type ? type : "unknown";
  if (t.rfind("ssh-", 0) == 0) t = t.substr(4);
  if (t.rfind("ecdsa-sha2-", 0) == 0) t = "ECDSA";
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::toupper(c); });
  return t + " key " + f;
}

bool acceptNewKey(const std::string& fingerprint) {
  const char* v = std::getenv("VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY");
  if (!v || !*v) return false;
  std::string s = v;
  std::string l = lower(s);
  if (l == "yes" || l == "1" || l == "true") return true;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    item.erase(std::remove_if(item.begin(), item.end(), [](unsigned char c) { return std::isspace(c); }), item.end());
    if (!item.empty() && item == fingerprint) return true;
  }
  return false;
}

long remainingMs(Deadline d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d - SteadyClock::now()).count();
  return ms > 0 ? static_cast<long>(ms) : 0;
}

void setTimeout(ssh_session s, Deadline d) {
  long ms = std::max<long>(1, remainingMs(d));
  long sec = ms / 1000, usec = (ms % 1000) * 1000;
  lib().ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &sec);
  lib().ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usec);
}

}  // namespace

SshConfigValues parseSshConfig(const std::string& text, const std::string& alias, const std::string& home,
                               const std::string& localUser) {
  SshConfigValues v;
  bool active = true;  // lines before the first Host apply to every host
  std::istringstream in(text);
  std::vector<std::string> rawIdentities;
  for (std::string line; std::getline(in, line);) {
    auto w = configWords(line);
    if (w.empty()) continue;
    std::string key = lower(w[0]);
    std::vector<std::string> args(w.begin() + 1, w.end());
    if (key == "host") {
      active = hostMatches(args, alias);
      continue;
    }
    if (key == "match") {
      active = false;
      continue;
    }
    if (!active || args.empty()) continue;
    if (key == "hostname" && !v.hostName) v.hostName = args[0];
    else if (key == "user" && !v.user) v.user = args[0];
    else if (key == "port" && !v.port) {
      const std::string& p = args[0];
      if (!p.empty() && p.size() <= 5 && p.find_first_not_of("0123456789") == std::string::npos) {
        int n = std::atoi(p.c_str());
        if (n >= 1 && n <= 65535) v.port = n;
      }
    } else if (key == "identityfile") {
      rawIdentities.push_back(args[0]);
    }
  }
  if (v.hostName) v.hostName = expandTokens(*v.hostName, {{'h', alias}});
  const std::string host = v.hostName.value_or(alias);
  const std::string user = v.user.value_or(localUser);
  for (const auto& raw : rawIdentities) {
    if (lower(raw) == "none") continue;
    v.identityFiles.push_back(expandTilde(
        expandTokens(raw, {{'d', home}, {'u', localUser}, {'h', host}, {'r', user},
                           {'p', std::to_string(v.port.value_or(22))}, {'n', alias}}),
        home));
  }
  return v;
}

std::string SshEndpoint::hostLabel() const {
  return port == 22 ? hostName : "[" + hostName + "]:" + std::to_string(port);
}

Result<SshEndpoint> endpointFor(const Target& target) {
  SshEndpoint ep;
  ep.target = target.name;
  auto host = target.spec.getString("host");
  if (!host || host->empty()) return Error{"Target " + target.name + " has no host"};
  ep.alias = *host;
  const std::string home = homeDir();
  SshConfigValues cfg;
  {
    std::ifstream in(home + "/.ssh/config", std::ios::binary);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      cfg = parseSshConfig(ss.str(), ep.alias, home, localUserName());
    }
  }
  ep.hostName = cfg.hostName.value_or(ep.alias);
  if (auto p = target.spec.getInt("port")) ep.port = static_cast<int>(*p);
  else if (cfg.port) ep.port = *cfg.port;
  if (auto u = target.spec.getString("user")) ep.user = *u;
  else if (cfg.user) ep.user = *cfg.user;
  if (auto f = target.spec.getString("identityFile")) {
    ep.identityFiles = {expandTilde(*f, home)};
    ep.identityFromTarget = true;
  } else {
    ep.identityFiles = cfg.identityFiles;
  }
  ep.passphrase = secretAt(target.spec, "identityPassphrase");
  if (auto k = target.spec.getString("knownHostsFile")) {
    ep.knownHostsFile = expandTilde(*k, home);
  } else {
    ep.knownHostsFile = home + "/.ssh/known_hosts";
    ep.globalKnownHostsFile = "/etc/ssh/ssh_known_hosts";
  }
  return ep;
}

struct SshConnection::Impl {
  ssh_session s = nullptr;
  bool broken = false;
  ~Impl() {
    if (s) {
      if (lib().ssh_is_connected(s)) {
        long sec = 1, usec = 0;
        lib().ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &sec);
        lib().ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usec);
        lib().ssh_disconnect(s);
      }
      lib().ssh_free(s);
    }
  }
};

namespace {

// Verifies the server's host key against known_hosts; records a new one only with the explicit opt-in.
Status checkHostKey(ssh_session s, const SshEndpoint& ep) {
  ssh_key raw = nullptr;
  if (lib().ssh_get_server_publickey(s, &raw) != SSH_OK) return Error{"the host sent no public key"};
  KeyPtr key(raw);
  std::string fp;
  const std::string what = fingerprintOf(key.get(), &fp);
  const std::string where = ep.hostLabel();
  const std::string keyType = lower(what.substr(0, what.find(' ')));
  const std::string scan = "ssh-keyscan -p " + std::to_string(ep.port) + " -t " + keyType + " " + ep.hostName +
                           " >> " + ep.knownHostsFile;
  const std::string verify =
      "compare it with the host's own key first (on the ESXi shell: ssh-keygen -lf /etc/ssh/ssh_host_" + keyType +
      "_key.pub)";
  switch (lib().ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK: return {};
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      return Error{"HOST KEY MISMATCH for " + where + ": it presents " + what + ", but " + ep.knownHostsFile +
                   " records a different key for it. Someone may be intercepting the connection, or the host was "
                   "reinstalled. Refusing to connect. If the new key is genuine (" + verify +
                   "), remove the old entry (ssh-keygen -R '" + where + "' -f " + ep.knownHostsFile +
                   ") and accept the new one (" + scan + ")"};
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND: {
      if (acceptNewKey(fp)) {
        if (lib().ssh_session_update_known_hosts(s) != SSH_OK)
          return Error{"cannot record the host key of " + where + " in " + ep.knownHostsFile + ": " + lib().ssh_get_error(s)};
        spdlog::warn("esxi: target {}: recorded the new host key of {} in {}: {}", ep.target, where, ep.knownHostsFile,
                     what);
        return {};
      }
      return Error{"the host key of " + where + " is not known (not in " + ep.knownHostsFile + "): " + what +
                   ". Refusing to connect to an unverified host. To accept it, " + verify +
                   ", then run once with VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY=" + fp + " (records it in " +
                   ep.knownHostsFile + "), or add it yourself: " + scan};
    }
    case SSH_KNOWN_HOSTS_ERROR:
    default: return Error{"cannot check the host key of " + where + " against " + ep.knownHostsFile + ": " + lib().ssh_get_error(s)};
  }
}

// Public key authentication: the identity files in order (an encrypted one with the passphrase), else the agent,
// else the default keys. Nothing of a secret goes into a message.
Status authenticate(ssh_session s, const SshEndpoint& ep) {
  std::optional<std::string> passphrase;
  if (ep.passphrase) {
    auto p = resolveSecret(*ep.passphrase);
    if (!p) return Error{"identityPassphrase: " + p.error().message};
    passphrase = std::move(*p);
  }
  struct Wiper {
    std::optional<std::string>& p;
    ~Wiper() {
      if (p) wipe(*p);
    }
  } wiper{passphrase};

  std::vector<std::string> refused;
  auto tryFile = [&](const std::string& path, bool required) -> std::optional<Status> {
    if (access(path.c_str(), R_OK) != 0) {
      if (required) return Status(Error{"cannot read identity file " + path + ": " + std::strerror(errno)});
      return std::nullopt;
    }
    ssh_key raw = nullptr;
    if (lib().ssh_pki_import_privkey_file(path.c_str(), passphrase ? passphrase->c_str() : nullptr, nullptr, nullptr, &raw) !=
        SSH_OK) {
      std::string why = passphrase ? "wrong passphrase (identityPassphrase, " + ep.passphrase->describe() +
                                         ") or not a private key"
                                   : "not a private key, or an encrypted one: give its passphrase as identityPassphrase "
                                     "({env: VAR} or {file: PATH})";
      if (required) return Status(Error{"cannot load identity file " + path + ": " + why});
      refused.push_back(path + " (unusable: " + why + ")");
      return std::nullopt;
    }
    KeyPtr key(raw);
    int rc = lib().ssh_userauth_publickey(s, nullptr, key.get());
    if (rc == SSH_AUTH_SUCCESS) return Status();
    if (rc == SSH_AUTH_ERROR) return Status(Error{std::string("authentication failed: ") + lib().ssh_get_error(s)});
    ssh_key pub = nullptr;
    std::string fp = "(key)";
    if (lib().ssh_pki_export_privkey_to_pubkey(key.get(), &pub) == SSH_OK) {
      KeyPtr p(pub);
      fp = fingerprintOf(p.get());
    }
    refused.push_back(path + " (" + fp + ")");
    return std::nullopt;
  };

  if (!ep.identityFiles.empty()) {
    for (const auto& f : ep.identityFiles)
      if (auto st = tryFile(f, ep.identityFromTarget)) return *st;
  } else {
    if (std::getenv("SSH_AUTH_SOCK")) {
      int rc = lib().ssh_userauth_agent(s, nullptr);
      if (rc == SSH_AUTH_SUCCESS) return {};
      if (rc == SSH_AUTH_ERROR && !lib().ssh_is_connected(s))
        return Error{std::string("authentication failed: ") + lib().ssh_get_error(s)};
      refused.push_back("the keys of ssh-agent");
    }
    const std::string home = homeDir();
    for (const char* k : {"id_ed25519", "id_ecdsa", "id_rsa"})
      if (auto st = tryFile(home + "/.ssh/" + k, false)) return *st;
  }
  if (refused.empty())
    return Error{"no key to authenticate with: set identityFile on the Target, add IdentityFile to ~/.ssh/config, or "
                 "run an ssh-agent"};
  std::string list;
  for (const auto& r : refused) list += (list.empty() ? "" : ", ") + r;
  return Error{"the host refused public key authentication as user " + ep.user + " with " + list};
}

}  // namespace

Result<std::unique_ptr<SshConnection>> SshConnection::open(const SshEndpoint& ep, Deadline deadline) {
  const std::string where = ep.user + "@" + ep.hostName + ":" + std::to_string(ep.port);
  if (const std::string& missing = lib().error; !missing.empty()) return Error{"SSH to " + where + ": " + missing};
  auto sock = StreamSocket::connectTcp(ep.hostName, ep.port, deadline);
  if (!sock) return Error{"cannot connect to " + ep.hostName + ":" + std::to_string(ep.port) + ": " + sock.error().message};
  int one = 1, idle = 15, intvl = 5, cnt = 3;
  // A dead peer (a host that lost power) is noticed in ~30 s even while nothing is sent.
  setsockopt(sock->fd(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(sock->fd(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(sock->fd(), IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(sock->fd(), IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  setsockopt(sock->fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // libssh owns (and closes) the descriptor it is given; the StreamSocket closes its own.
  int fd = fcntl(sock->fd(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return Error{std::string("dup: ") + std::strerror(errno)};

  std::unique_ptr<SshConnection> c(new SshConnection());
  c->ep_ = ep;
  c->impl_ = std::make_unique<Impl>();
  ssh_session s = lib().ssh_new();
  if (!s) {
    close(fd);
    return Error{"ssh_new failed"};
  }
  c->impl_->s = s;
  // Never read ~/.ssh/config or /etc/ssh/ssh_config behind our back: they could weaken host-key checking.
  bool no = false;
  lib().ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);
  int verbosity = SSH_LOG_NOLOG;
  lib().ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  lib().ssh_options_set(s, SSH_OPTIONS_HOST, ep.hostName.c_str());
  unsigned int port = static_cast<unsigned int>(ep.port);
  lib().ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  lib().ssh_options_set(s, SSH_OPTIONS_USER, ep.user.c_str());
  lib().ssh_options_set(s, SSH_OPTIONS_FD, &fd);
  lib().ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, ep.knownHostsFile.c_str());
  lib().ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS,
                  ep.globalKnownHostsFile.empty() ? "/dev/null" : ep.globalKnownHostsFile.c_str());
  int off = 0;
  lib().ssh_options_set(s, SSH_OPTIONS_PASSWORD_AUTH, &off);
  lib().ssh_options_set(s, SSH_OPTIONS_KBDINT_AUTH, &off);
  lib().ssh_options_set(s, SSH_OPTIONS_GSSAPI_AUTH, &off);
  setTimeout(s, deadline);
  if (lib().ssh_connect(s) != SSH_OK)
    return Error{"SSH handshake with " + ep.hostName + ":" + std::to_string(ep.port) + " failed: " + lib().ssh_get_error(s)};
  if (Status st = checkHostKey(s, ep); !st) return st.error();
  setTimeout(s, deadline);
  if (Status st = authenticate(s, ep); !st) return Error{where + ": " + st.error().message};
  return c;
}

SshConnection::~SshConnection() = default;

bool SshConnection::usable() const { return impl_ && impl_->s && !impl_->broken && lib().ssh_is_connected(impl_->s); }

SshConnection::Exec SshConnection::exec(const std::string& command, const std::string& input,
                                        const std::function<void(std::string_view)>& onData,
                                        const std::function<Deadline()>& deadline) {
  Exec r;
  ssh_session s = impl_->s;
  auto lost = [&](const std::string& what) {
    impl_->broken = true;
    r.broken = true;
    r.status = Error{what + ": " + lib().ssh_get_error(s) + " (the SSH connection to " + ep_.hostLabel() + " was lost)"};
    return r;
  };
  setTimeout(s, deadline());
  ssh_channel ch = lib().ssh_channel_new(s);
  r.notStarted = true;
  if (!ch) return lost("cannot open a channel");
  struct ChannelGuard {
    ssh_channel ch;
    ssh_session s;
    ~ChannelGuard() {
      if (!ch) return;
      if (lib().ssh_is_connected(s)) {
        long sec = 2, usec = 0;
        lib().ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &sec);
        lib().ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usec);
        lib().ssh_channel_close(ch);
      }
      lib().ssh_channel_free(ch);
    }
  } guard{ch, s};
  if (lib().ssh_channel_open_session(ch) != SSH_OK) return lost("cannot open a session channel");
  if (lib().ssh_channel_request_exec(ch, command.c_str()) != SSH_OK) return lost("the exec request failed");
  r.notStarted = false;
  for (size_t off = 0; off < input.size();) {
    setTimeout(s, deadline());
    int n = lib().ssh_channel_write(ch, input.data() + off, static_cast<uint32_t>(std::min<size_t>(input.size() - off, 32768)));
    if (n == SSH_ERROR) return lost("sending the script failed");
    if (n == 0) {
      if (remainingMs(deadline()) <= 0) {
        r.timedOut = true;
        r.status = Error{"timed out sending the script"};
        return r;
      }
      continue;
    }
    off += static_cast<size_t>(n);
  }
  lib().ssh_channel_send_eof(ch);

  char buf[16384];
  auto lastTraffic = SteadyClock::now();
  for (;;) {
    const Deadline d = deadline();
    const long left = remainingMs(d);
    if (left <= 0) {
      r.timedOut = true;
      r.status = Error{"timed out"};
      return r;  // the guard closes the channel: the remote command sees its output go away
    }
    int n = lib().ssh_channel_poll_timeout(ch, static_cast<int>(std::min<long>(left, 200)), 0);
    if (n == SSH_ERROR) return lost("reading the command's output failed");
    if (n > 0) {
      int got = lib().ssh_channel_read_nonblocking(ch, buf, static_cast<uint32_t>(std::min<int>(n, sizeof buf)), 0);
      if (got == SSH_ERROR) return lost("reading the command's output failed");
      if (got > 0) {
        onData(std::string_view(buf, static_cast<size_t>(got)));
        lastTraffic = SteadyClock::now();
      }
    }
    for (;;) {
      int e = lib().ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1);
      if (e <= 0) break;
      if (r.stderrText.size() < kMaxStderr) r.stderrText.append(buf, static_cast<size_t>(e));
      lastTraffic = SteadyClock::now();
    }
    if (n == SSH_EOF || lib().ssh_channel_is_eof(ch)) break;
    if (!lib().ssh_is_connected(s)) return lost("the connection closed");
    if (SteadyClock::now() - lastTraffic > kKeepaliveEvery) {
      // A long esxcli (or a slow host) must not let a NAT or firewall forget the connection.
      if (lib().ssh_send_ignore(s, "") != SSH_OK) return lost("sending a keepalive failed");
      lastTraffic = SteadyClock::now();
    }
  }
  r.exitStatus = lib().ssh_channel_get_exit_status(ch);
  return r;
}

}  // namespace vnetplan::esxi
