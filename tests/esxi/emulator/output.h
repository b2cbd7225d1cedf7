// What an esxcli command returns, as typed data (structures of typed fields), and the four ways esxcli prints it:
// the default human output, --formatter=keyvalue, --formatter=xml and --formatter=csv.
#pragma once
#include <string>
#include <vector>

namespace esxemu {

struct Value {
  enum class Kind { String, Integer, Boolean, StringList };
  Kind kind = Kind::String;
  std::string s;
  long long i = 0;
  bool b = false;
  std::vector<std::string> list;
  std::string unit;  // human output only ("Kbps"): keyvalue/xml/csv carry the bare integer

  static Value str(std::string v);
  static Value integer(long long v, std::string unit = {});
  static Value boolean(bool v);
  static Value strings(std::vector<std::string> v);
};

struct Field {
  std::string label;  // as the human output prints it ("MAC Address"); other formatters drop the spaces
  Value value;
};

struct Structure {
  std::string typeName;  // VirtualSwitch, PortGroupFailoverPolicy, ...
  std::vector<Field> fields;
};

struct Result {
  // Nothing: a command that only changes something (esxcli prints nothing on success).
  // Single: one structure (`policy ... get`): "   Label: value" lines.
  // List: a list of structures printed as blocks headed by their Name (`vswitch standard list`).
  // Table: a list of structures printed as a table (`portgroup list`, `nic list`).
  enum class Shape { Nothing, Single, List, Table };
  Shape shape = Shape::Nothing;
  std::vector<Structure> items;
  Structure columns;  // Table: the header (labels and kinds), needed even when there are no rows
};

enum class Formatter { Human, KeyValue, Xml, Csv };

std::string render(const Result& r, Formatter f);

}  // namespace esxemu
