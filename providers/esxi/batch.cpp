#include "providers/esxi/batch.h"

#include <cctype>

#include "base/random.h"

namespace vnetplan::esxi {

namespace {

// Words that read the same unquoted in a message (and in any shell).
bool plainWord(std::string_view w) {
  if (w.empty()) return false;
  for (char c : w)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ',' || c == '/' ||
          c == ':' || c == '='))
      return false;
  return true;
}

}  // namespace

std::string shellQuote(std::string_view text) {
  std::string q = "'";
  for (char c : text) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

std::string EsxcliCommand::text() const {
  std::string out = "esxcli";
  for (const auto& a : args) {
    out += ' ';
    // --name=value: quote the value only, as an admin would type it.
    size_t eq = a.rfind("--", 0) == 0 ? a.find('=') : std::string::npos;
    if (eq != std::string::npos && plainWord(a.substr(0, eq)))
      out += a.substr(0, eq + 1) + (plainWord(a.substr(eq + 1)) ? a.substr(eq + 1) : shellQuote(a.substr(eq + 1)));
    else
      out += plainWord(a) ? a : shellQuote(a);
  }
  return out;
}

std::string newNonce() { return "VNP" + randomHex(12); }

std::string buildScript(const std::vector<EsxcliCommand>& cmds, size_t firstIndex, const std::string& nonce,
                        bool stopAtFailure) {
  // stdin from /dev/null: a command must never eat the rest of the script or wait for input. The blank line
  // before the marker puts it on a line of its own whatever the command printed last.
  std::string s = "n=" + std::to_string(firstIndex) + "\nr() { esxcli \"$@\" </dev/null 2>&1; s=$?; echo; echo \"" +
                  nonce + " $n $s\"; n=$((n+1))" + (stopAtFailure ? "; [ \"$s\" = 0 ] || exit 0" : "") + "; }\n";
  for (const auto& c : cmds) {
    s += "r";
    for (const auto& a : c.args) s += " " + shellQuote(a);
    s += "\n";
  }
  return s;
}

std::string remoteCommand() {
  // The script comes on stdin and runs in the login shell itself (ESXi: busybox ash): no limit on its size (a
  // command line is capped at 128 KiB), and nothing of it is on a process's command line.
  return "eval \"$(cat)\"";
}

bool MarkerReader::feed(std::string_view bytes, const std::function<void(size_t, CommandResult)>& onDone) {
  if (!error_.empty()) return false;
  buf_.append(bytes);
  const std::string head = "\n" + nonce_ + " ";
  for (;;) {
    size_t at = buf_.find(head);
    if (at == std::string::npos) return true;
    size_t eol = buf_.find('\n', at + head.size());
    if (eol == std::string::npos) return true;  // the marker line is not complete yet
    std::string line = buf_.substr(at + head.size(), eol - at - head.size());
    size_t sp = line.find(' ');
    std::string idx = line.substr(0, sp), st = sp == std::string::npos ? "" : line.substr(sp + 1);
    auto digits = [](const std::string& t) {
      return !t.empty() && t.size() <= 9 && t.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!digits(idx) || !digits(st)) {
      error_ = "unreadable status marker";
      return false;
    }
    if (static_cast<size_t>(std::stoul(idx)) != next_) {
      error_ = "status marker " + idx + " where " + std::to_string(next_) + " was expected";
      return false;
    }
    CommandResult r;
    r.status = std::stoi(st);
    r.output = buf_.substr(0, at);
    buf_.erase(0, eol + 1);
    onDone(next_++, std::move(r));
  }
}

}  // namespace vnetplan::esxi
