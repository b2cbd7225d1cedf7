// Several esxcli invocations in one SSH exec, each followed by a status marker, so one round trip runs a whole
// batch and still says exactly which commands ran and how each ended:
//
//   n=0
//   r() { esxcli "$@" </dev/null 2>&1; s=$?; echo; echo "VNP1f0c... $n $s"; n=$((n+1)); }
//   r '--formatter=xml' 'network' 'nic' 'list'
//   ...
//
// The script goes to the host on the exec's stdin and runs there in the login shell (remoteCommand()).
// The marker carries a random nonce chosen per exec, so nothing a command prints (a port group's name, a host
// that prints garbage) can pass for one. Every argument is single-quoted for the host's shell (busybox ash), so a
// value never reaches it as anything but one word; options are spelled --name=value, so a value that starts with
// '-' is never taken for an option.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vnetplan::esxi {

// One esxcli invocation: the words after "esxcli".
struct EsxcliCommand {
  std::vector<std::string> args;
  // "esxcli network vswitch standard add --vswitch-name='a b'": for messages (quoted only where needed).
  std::string text() const;
};

// 'text' with every ' written as '\'' -- one word for any POSIX shell, whatever it contains.
std::string shellQuote(std::string_view text);

// The script running `cmds` in order; command i's marker carries index `firstIndex + i`. With `stopAtFailure`
// the script ends after the first command that exits non-zero (the rest never run).
std::string buildScript(const std::vector<EsxcliCommand>& cmds, size_t firstIndex, const std::string& nonce,
                        bool stopAtFailure);

// The exec's command: runs the script it is sent on stdin.
std::string remoteCommand();

// A fresh nonce for one exec.
std::string newNonce();

struct CommandResult {
  int status = 0;      // the command's exit status
  std::string output;  // what it printed (stdout and stderr merged)
};

// Reads an exec's output as it arrives and reports each command as its marker completes.
class MarkerReader {
 public:
  MarkerReader(std::string nonce, size_t firstIndex) : nonce_(std::move(nonce)), next_(firstIndex) {}
  // Adds bytes; calls `onDone(index, result)` for every command whose marker is now complete. Returns false (and
  // stops reading) on a marker out of order or unreadable: the stream is not what this script prints.
  bool feed(std::string_view bytes, const std::function<void(size_t, CommandResult)>& onDone);
  size_t nextIndex() const { return next_; }
  // What was printed after the last complete marker (a command still running, or the shell's own complaint).
  const std::string& pending() const { return buf_; }
  const std::string& error() const { return error_; }

 private:
  std::string nonce_;
  size_t next_;
  std::string buf_;
  std::string error_;
};

}  // namespace vnetplan::esxi
