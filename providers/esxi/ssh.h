// The SSH transport of the esxi provider, on libssh: one connection per target, key authentication (identity
// file, optionally with a passphrase from a secret reference, or ssh-agent), strict host-key checking against a
// known_hosts file, and scripts run as single execs whose output is streamed back.
//
// Host keys: a key that is not in known_hosts is refused with its fingerprint and how to accept it; a key that
// differs from the recorded one is always refused. Recording a new key needs an explicit opt-in for the run:
// VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY=SHA256:<fingerprint>[,...] (only that key) or =yes (any key of a host that has
// none recorded yet, like OpenSSH's StrictHostKeyChecking=accept-new).
//
// ~/.ssh/config: the Host blocks matching the Target's host give HostName, User, Port and IdentityFile (the
// Target's own fields win). Nothing else is read from it -- not ProxyCommand, not StrictHostKeyChecking, not
// UserKnownHostsFile -- so a config file can never weaken host-key checking; libssh's own config processing is off.
//
// Secrets (the passphrase, the agent's socket) are never logged or put into a message.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/socket.h"
#include "model/model.h"
#include "model/secret.h"

namespace vnetplan::esxi {

// What ~/.ssh/config says for one host alias (first value wins, IdentityFile accumulates, as in OpenSSH).
struct SshConfigValues {
  std::optional<std::string> hostName;
  std::optional<std::string> user;
  std::optional<int> port;
  std::vector<std::string> identityFiles;
};
// Parses config text for `alias`. `home` expands ~, `localUser` %u; %h, %r, %p, %% are expanded too. Include is
// not followed; Match blocks are skipped (their conditions cannot be evaluated safely here).
SshConfigValues parseSshConfig(const std::string& text, const std::string& alias, const std::string& home,
                               const std::string& localUser);

// Everything needed to reach one host.
struct SshEndpoint {
  std::string target;    // the Target's name, for messages
  std::string alias;     // Target.host as written
  std::string hostName;  // what is connected to (HostName from ~/.ssh/config, else alias)
  int port = 22;
  std::string user = "root";
  std::vector<std::string> identityFiles;  // tried in order; empty: ssh-agent, then ~/.ssh/id_*
  bool identityFromTarget = false;
  std::optional<SecretRef> passphrase;
  std::string knownHostsFile;
  std::string globalKnownHostsFile;  // "" = none
  std::string hostLabel() const;     // "[127.0.0.1]:2222" or "esxi01" as known_hosts names it
};

// Builds the endpoint from a Target's fields, ~/.ssh/config and the defaults.
Result<SshEndpoint> endpointFor(const Target& target);

class SshConnection {
 public:
  // Connects, checks the host key and authenticates, all before `deadline`.
  static Result<std::unique_ptr<SshConnection>> open(const SshEndpoint& ep, Deadline deadline);
  ~SshConnection();
  SshConnection(const SshConnection&) = delete;
  SshConnection& operator=(const SshConnection&) = delete;

  struct Exec {
    Status status;               // ok: the script ran to its end (the channel reached EOF)
    bool timedOut = false;       // the deadline passed first (the channel was closed; the connection is kept)
    bool broken = false;         // the connection is gone: it cannot be used again
    bool notStarted = false;     // ... and it was gone before the script was sent (nothing of it ran)
    std::string stderrText;      // what the shell printed on stderr (bounded)
    int exitStatus = -1;
  };
  // Runs `command` as one exec, with `input` as its stdin (then EOF). `onData` gets stdout as it arrives; `deadline()` is asked again after every chunk,
  // so a caller can extend it as work completes (a per-command timeout). A channel that stays silent gets
  // keepalives.
  Exec exec(const std::string& command, const std::string& input, const std::function<void(std::string_view)>& onData,
            const std::function<Deadline()>& deadline);

  bool usable() const;
  const SshEndpoint& endpoint() const { return ep_; }

 private:
  SshConnection() = default;
  SshEndpoint ep_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vnetplan::esxi
