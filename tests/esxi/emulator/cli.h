// esxcli's command line: the namespace tree, each command's options (short and long spellings, types, which are
// required) and the strict parsing ESXi does — an unknown option, a missing required option or a value of the
// wrong type is an error that names the option, printed with the command's usage, and nothing is changed.
#pragma once
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/esxi/emulator/output.h"
#include "tests/esxi/emulator/state.h"

namespace esxemu {

// Any failure of a command: `message` is printed as is on stdout and esxcli exits 1.
struct EsxError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class ArgType {
  String,   // <str>
  Long,     // <long>
  Boolean,  // <bool>: true/false, yes/no, 1/0 in any case
  Flag,     // no value: present or not
};

struct OptSpec {
  char shortName;       // 'v' for -v
  std::string longName; // "vswitch-name" for --vswitch-name
  ArgType type;
  bool required;
  std::string help;
  std::vector<std::string> choices;  // a String restricted to these values (esxcli enums)
};

// The parsed options of one invocation, by long name; a Flag that is present has the value "true".
class Options {
 public:
  bool has(const std::string& longName) const { return values_.count(longName) != 0; }
  const std::string& str(const std::string& longName) const { return values_.at(longName); }
  long long integer(const std::string& longName) const;
  bool boolean(const std::string& longName) const;
  void set(const std::string& longName, std::string v) { values_[longName] = std::move(v); }

 private:
  std::map<std::string, std::string> values_;
};

struct Context {
  Host& host;
  const Options& opt;
  Result result;
  bool modified = false;  // the state file is written only if a command changed something
};

using Handler = void (*)(Context&);

struct CmdSpec {
  std::vector<std::string> path;  // {"network", "vswitch", "standard", "add"}
  std::string description;
  std::vector<OptSpec> options;
  Handler handler;
  bool readOnly;
};

const std::vector<CmdSpec>& commands();
// Namespaces that have a description of their own (for the listing of a namespace).
const std::map<std::string, std::string>& namespaceDescriptions();

// What the arguments after the global options ask for.
struct Parsed {
  const CmdSpec* cmd = nullptr;  // null: a namespace listing or --help (text in `output`)
  Options options;
  std::string output;
};

// Throws EsxError with esxcli's message (and usage where esxcli prints it).
Parsed parseCommand(const std::vector<std::string>& args);

bool parseBool(const std::string& v, bool& out);

}  // namespace esxemu
