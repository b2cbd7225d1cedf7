// esxcli's XML formatter (`esxcli --formatter=xml ...`), read into plain values. Only the shape esxcli prints is
// accepted -- <output><root> holding a <structure>, a <list> of them, or a scalar -- so anything else (a host that
// prints garbage, truncated output, a shell error in place of XML) is a clear error, never a partial result.
//
//   <output xmlns="http://www.vmware.com/Products/ESX/5.0/esxcli"><root>
//     <list type="structure"><structure typeName="VirtualSwitch">
//       <field name="Name"><string>vSwitch0</string></field>
//       <field name="MTU"><integer>1500</integer></field>
//       <field name="Uplinks"><list type="string"><string>vmnic0</string></list></field>
//     </structure></list>
//   </root></output>
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vnetplan::esxi {

// One field value: a string, an integer, a boolean or a list of strings.
struct XmlValue {
  enum class Type { String, Integer, Boolean, List } type = Type::String;
  std::string text;               // String (and the digits of an Integer)
  int64_t integer = 0;            // Integer
  bool boolean = false;           // Boolean
  std::vector<std::string> list;  // List
};

struct XmlStructure {
  std::string typeName;
  std::map<std::string, XmlValue> fields;

  // Typed lookups; an error names the structure, the field and what was wrong.
  Result<std::string> str(const std::string& field) const;
  Result<int64_t> integer(const std::string& field) const;
  Result<bool> boolean(const std::string& field) const;
  Result<std::vector<std::string>> strings(const std::string& field) const;
  bool has(const std::string& field) const { return fields.count(field) != 0; }
};

// What one command printed: one structure (a `get`) or a list of them (a `list`; possibly empty).
struct XmlOutput {
  bool isList = false;
  std::vector<XmlStructure> structures;
};

// Parses one command's XML output. `text` may be empty only for a list that printed nothing at all, which this
// refuses: esxcli always prints the document.
Result<XmlOutput> parseEsxcliXml(std::string_view text);

// The first bytes of `text`, with control characters and non-ASCII bytes escaped: for error messages quoting
// what a host printed (it may be anything).
std::string printable(std::string_view text, size_t max = 120);

}  // namespace vnetplan::esxi
