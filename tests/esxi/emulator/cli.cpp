// Message texts: "Error: Unknown command or namespace <words>" is seen in public captures (V); the enum error
// "Invalid data constraint for parameter '<name>'" is matched by VMware's own vdnet tests (V, partial); the rest
// ("Missing required parameter -v|--vswitch-name", "Invalid option --foo", the usage layout) is reconstructed
// from memory of ESXi 6.x/7.x sessions [R].
#include "tests/esxi/emulator/cli.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <set>

namespace esxemu {

bool parseBool(const std::string& v, bool& out) {
  std::string l;
  for (char c : v) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "true" || l == "yes" || l == "1") {
    out = true;
    return true;
  }
  if (l == "false" || l == "no" || l == "0") {
    out = false;
    return true;
  }
  return false;
}

static bool parseLong(const std::string& v, long long& out) {
  if (v.empty()) return false;
  size_t i = (v[0] == '-') ? 1 : 0;
  if (i == v.size()) return false;
  for (size_t k = i; k < v.size(); ++k)
    if (v[k] < '0' || v[k] > '9') return false;
  errno = 0;
  out = std::strtoll(v.c_str(), nullptr, 10);
  return errno == 0;
}

long long Options::integer(const std::string& longName) const {
  long long v = 0;
  parseLong(values_.at(longName), v);  // validated while parsing
  return v;
}

bool Options::boolean(const std::string& longName) const {
  bool v = false;
  parseBool(values_.at(longName), v);
  return v;
}

namespace {

std::string joinWords(const std::vector<std::string>& w, size_t n) {
  std::string out;
  for (size_t i = 0; i < n && i < w.size(); ++i) out += (i ? " " : "") + w[i];
  return out;
}

std::string spelling(const OptSpec& o) {
  std::string s = "-" + std::string(1, o.shortName) + "|--" + o.longName;
  switch (o.type) {
    case ArgType::String: s += "=<str>"; break;
    case ArgType::Long: s += "=<long>"; break;
    case ArgType::Boolean: s += "=<bool>"; break;
    case ArgType::Flag: break;
  }
  return s;
}

std::string names(const OptSpec& o) { return "-" + std::string(1, o.shortName) + "|--" + o.longName; }

// Two columns: the name padded to 22, then the text; a name too long for the column gets a line of its own.
std::string column(const std::string& name, const std::string& text) {
  std::string out = "  " + name;
  if (name.size() + 2 >= 22) return out + "\n" + std::string(24, ' ') + text + "\n";
  return out + std::string(24 - out.size(), ' ') + text + "\n";
}

std::vector<const OptSpec*> byLongName(const CmdSpec& c) {
  std::vector<const OptSpec*> v;
  for (const auto& o : c.options) v.push_back(&o);
  std::sort(v.begin(), v.end(), [](const OptSpec* a, const OptSpec* b) { return a->longName < b->longName; });
  return v;
}

std::string usage(const CmdSpec& c) {
  std::string out = "Usage: esxcli " + joinWords(c.path, c.path.size()) + " [cmd options]\n\nDescription:\n";
  out += column(c.path.back(), c.description);
  out += "\nCmd options:\n";
  for (const OptSpec* o : byLongName(c)) {
    std::string help = o->help;
    if (!o->choices.empty()) {
      help += " (";
      for (size_t i = 0; i < o->choices.size(); ++i) help += (i ? "|" : "") + o->choices[i];
      help += ")";
    }
    if (o->required) help += " (required)";
    out += column(spelling(*o), help);
  }
  return out;
}

// The listing of a namespace: what esxcli prints for `esxcli network vswitch standard`.
std::string namespaceListing(const std::vector<std::string>& prefix) {
  std::set<std::string> namespaces;
  std::vector<const CmdSpec*> cmds;
  for (const auto& c : commands()) {
    if (c.path.size() <= prefix.size() || !std::equal(prefix.begin(), prefix.end(), c.path.begin())) continue;
    if (c.path.size() == prefix.size() + 1)
      cmds.push_back(&c);
    else
      namespaces.insert(c.path[prefix.size()]);
  }
  std::string ns = joinWords(prefix, prefix.size());
  std::string out = "Usage: esxcli " + (ns.empty() ? "[options] {namespace}+" : ns + " {cmd}") + " [cmd options]\n";
  if (prefix.empty())
    out += "\nOptions:\n" + column("--formatter=FORMATTER", "Override the formatter to use for a given command. "
                                                            "Available formatters: xml, csv, keyvalue");
  if (!namespaces.empty()) {
    out += "\nAvailable Namespaces:\n";
    for (const auto& n : namespaces) {
      std::string full = ns.empty() ? n : ns + " " + n;
      auto d = namespaceDescriptions().find(full);
      out += column(n, d == namespaceDescriptions().end() ? "" : d->second);
    }
  }
  if (!cmds.empty()) {
    out += "\nAvailable Commands:\n";
    for (const CmdSpec* c : cmds) out += column(c->path.back(), c->description);
  }
  return out;
}

[[noreturn]] void fail(const std::string& message, const CmdSpec* c) {
  throw EsxError("Error: " + message + (c ? "\n\n" + usage(*c) : ""));
}

void checkValue(const OptSpec& o, const std::string& v, const CmdSpec& c) {
  long long n = 0;
  bool b = false;
  switch (o.type) {
    case ArgType::Long:
      if (!parseLong(v, n)) fail("Invalid value for parameter '" + o.longName + "': '" + v + "' is not a number.", &c);
      break;
    case ArgType::Boolean:
      if (!parseBool(v, b)) fail("Invalid value for parameter '" + o.longName + "': '" + v + "' is not a boolean.", &c);
      break;
    case ArgType::String:
      if (!o.choices.empty() && std::find(o.choices.begin(), o.choices.end(), v) == o.choices.end())
        fail("Invalid data constraint for parameter '" + o.longName + "'.", &c);
      break;
    case ArgType::Flag: break;
  }
}

}  // namespace

Parsed parseCommand(const std::vector<std::string>& args) {
  Parsed p;
  size_t nwords = 0;
  while (nwords < args.size() && (args[nwords].empty() || args[nwords][0] != '-')) ++nwords;
  std::vector<std::string> words(args.begin(), args.begin() + static_cast<long>(nwords));
  const std::vector<std::string> rest(args.begin() + static_cast<long>(nwords), args.end());

  for (const auto& c : commands())
    if (c.path == words) p.cmd = &c;
  if (!p.cmd) {
    bool isNamespace = false;
    for (const auto& c : commands())
      if (c.path.size() > words.size() && std::equal(words.begin(), words.end(), c.path.begin())) isNamespace = true;
    if (!isNamespace) throw EsxError("Error: Unknown command or namespace " + joinWords(words, words.size()));
    if (!rest.empty() && rest[0] != "--help") throw EsxError("Error: Invalid option " + rest[0]);
    p.output = namespaceListing(words);
    return p;
  }

  const CmdSpec& c = *p.cmd;
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& tok = rest[i];
    if (tok == "--help") {
      p.output = usage(c);
      p.cmd = nullptr;
      return p;
    }
    const OptSpec* spec = nullptr;
    std::string value;
    bool haveValue = false;
    if (tok.rfind("--", 0) == 0 && tok.size() > 2) {
      size_t eq = tok.find('=');
      std::string name = tok.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      for (const auto& o : c.options)
        if (o.longName == name) spec = &o;
      if (!spec) fail("Invalid option --" + name, &c);
      if (eq != std::string::npos) {
        if (spec->type == ArgType::Flag) fail("Option --" + name + " does not take a value", &c);
        value = tok.substr(eq + 1);
        haveValue = true;
      }
    } else if (tok.size() >= 2 && tok[0] == '-' && tok[1] != '-') {
      for (const auto& o : c.options)
        if (o.shortName == tok[1]) spec = &o;
      if (!spec) fail("Invalid option " + tok.substr(0, 2), &c);
      if (tok.size() > 2) {
        // getopt style "-vvSwitch1"; a flag has no value to glue on
        if (spec->type == ArgType::Flag) fail("Invalid option " + tok, &c);
        value = tok.substr(2);
        haveValue = true;
      }
    } else {
      fail("Unexpected argument '" + tok + "'", &c);
    }
    if (spec->type == ArgType::Flag) {
      value = "true";
    } else if (!haveValue) {
      if (i + 1 >= rest.size()) fail("Missing value for option " + names(*spec), &c);
      value = rest[++i];
    }
    if (p.options.has(spec->longName)) fail("Option " + names(*spec) + " was given more than once", &c);
    checkValue(*spec, value, c);
    p.options.set(spec->longName, value);
  }
  for (const OptSpec* o : byLongName(c))
    if (o->required && !p.options.has(o->longName)) fail("Missing required parameter " + names(*o), &c);
  return p;
}

}  // namespace esxemu
