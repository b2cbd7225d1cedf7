// Formatter details come from reference/esxcli.md; what it marks [R] (reconstructed, not seen in a capture) is
// marked so here too.
#include "tests/esxi/emulator/output.h"

#include <algorithm>
#include <utility>

namespace esxemu {

Value Value::str(std::string v) {
  Value x;
  x.kind = Kind::String;
  x.s = std::move(v);
  return x;
}
Value Value::integer(long long v, std::string unit) {
  Value x;
  x.kind = Kind::Integer;
  x.i = v;
  x.unit = std::move(unit);
  return x;
}
Value Value::boolean(bool v) {
  Value x;
  x.kind = Kind::Boolean;
  x.b = v;
  return x;
}
Value Value::strings(std::vector<std::string> v) {
  Value x;
  x.kind = Kind::StringList;
  x.list = std::move(v);
  return x;
}

namespace {

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

// The value as the default formatter prints it: list items joined by ", ", integers with their unit.
std::string humanText(const Value& v) {
  switch (v.kind) {
    case Value::Kind::String: return v.s;
    case Value::Kind::Integer: return std::to_string(v.i) + (v.unit.empty() ? "" : " " + v.unit);
    case Value::Kind::Boolean: return v.b ? "true" : "false";
    case Value::Kind::StringList: return join(v.list, ", ");
  }
  return {};
}

std::string key(const std::string& label) {
  std::string k;
  for (char c : label)
    if (c != ' ') k += c;
  return k;
}

// Fields in ASCII order of their keys: keyvalue and csv sort them (V), xml too [R].
std::vector<const Field*> sortedFields(const Structure& s) {
  std::vector<const Field*> out;
  for (const auto& f : s.fields) out.push_back(&f);
  std::stable_sort(out.begin(), out.end(), [](const Field* a, const Field* b) { return key(a->label) < key(b->label); });
  return out;
}

void humanFields(std::string& out, const Structure& s) {
  for (const auto& f : s.fields) {
    std::string text = humanText(f.value);
    // "   Beacon Required By:" (V): nothing after the colon when the value is empty.
    out += "   " + f.label + ":" + (text.empty() ? "" : " " + text) + "\n";
  }
}

std::string humanTable(const Result& r) {
  const auto& cols = r.columns.fields;
  std::vector<size_t> width(cols.size());
  std::vector<std::vector<std::string>> cells;
  for (size_t c = 0; c < cols.size(); ++c) width[c] = cols[c].label.size();
  for (const auto& row : r.items) {
    std::vector<std::string> line;
    for (size_t c = 0; c < cols.size(); ++c) {
      std::string t = c < row.fields.size() ? humanText(row.fields[c].value) : "";
      width[c] = std::max(width[c], t.size());
      line.push_back(std::move(t));
    }
    cells.push_back(std::move(line));
  }
  // Numbers (and their headers) are right-aligned (V: "MAC Address         MTU" in `nic list`), the rest
  // left-aligned; columns are two spaces apart. The last column is not padded [R].
  auto emit = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t c = 0; c < cols.size(); ++c) {
      if (c) out += "  ";
      const std::string& t = line[c];
      std::string pad(width[c] - std::min(width[c], t.size()), ' ');
      if (cols[c].value.kind == Value::Kind::Integer)
        out += pad + t;
      else
        out += t + (c + 1 < cols.size() ? pad : "");
    }
    return out + "\n";
  };
  std::vector<std::string> header, dashes;
  for (size_t c = 0; c < cols.size(); ++c) {
    header.push_back(cols[c].label);
    dashes.push_back(std::string(width[c], '-'));
  }
  std::string out = emit(header) + emit(dashes);
  for (const auto& line : cells) out += emit(line);
  return out;
}

std::string human(const Result& r) {
  std::string out;
  switch (r.shape) {
    case Result::Shape::Nothing: break;
    case Result::Shape::Single:
      if (!r.items.empty()) humanFields(out, r.items[0]);
      break;
    case Result::Shape::List:
      for (const auto& s : r.items) {
        std::string name;
        for (const auto& f : s.fields)
          if (f.label == "Name") name = humanText(f.value);
        out += name + "\n";
        humanFields(out, s);
        out += "\n";
      }
      break;
    case Result::Shape::Table: out = humanTable(r); break;
  }
  return out;
}

std::string keyvalue(const Result& r) {
  if (r.shape == Result::Shape::Nothing) return {};
  std::string out;
  const bool single = r.shape == Result::Shape::Single;
  for (size_t i = 0; i < r.items.size(); ++i) {
    const Structure& s = r.items[i];
    // V: "structure[0].VirtualSwitch.MTU.integer=1500"; a single structure has no "structure[i]." [R].
    const std::string prefix = (single ? "" : "structure[" + std::to_string(i) + "].") + s.typeName + ".";
    for (const Field* f : sortedFields(s)) {
      const std::string base = prefix + key(f->label) + ".";
      const Value& v = f->value;
      switch (v.kind) {
        case Value::Kind::String: out += base + "string=" + v.s + "\n"; break;
        case Value::Kind::Integer: out += base + "integer=" + std::to_string(v.i) + "\n"; break;
        case Value::Kind::Boolean: out += base + "boolean=" + (v.b ? "true" : "false") + "\n"; break;
        case Value::Kind::StringList:
          // V: "...BeaconRequiredBy.string[] = " for an empty list, "...Uplinks.string[0].string=vmnic0" items.
          if (v.list.empty()) out += base + "string[] = \n";
          for (size_t j = 0; j < v.list.size(); ++j)
            out += base + "string[" + std::to_string(j) + "].string=" + v.list[j] + "\n";
          break;
      }
    }
  }
  return out;
}

std::string xmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// [R] The layout (declaration, one element per line, three-space indentation) is reconstructed; the element
// names, the namespace and the typeName/name attributes are those of reference/esxcli.md.
void xmlStructure(std::string& out, const Structure& s, const std::string& ind) {
  out += ind + "<structure typeName=\"" + xmlEscape(s.typeName) + "\">\n";
  for (const Field* f : sortedFields(s)) {
    out += ind + "   <field name=\"" + xmlEscape(key(f->label)) + "\">\n";
    const std::string in2 = ind + "      ";
    const Value& v = f->value;
    switch (v.kind) {
      case Value::Kind::String: out += in2 + "<string>" + xmlEscape(v.s) + "</string>\n"; break;
      case Value::Kind::Integer: out += in2 + "<integer>" + std::to_string(v.i) + "</integer>\n"; break;
      case Value::Kind::Boolean: out += in2 + "<boolean>" + (v.b ? "true" : "false") + "</boolean>\n"; break;
      case Value::Kind::StringList:
        out += in2 + "<list type=\"string\">\n";
        for (const auto& item : v.list) out += in2 + "   <string>" + xmlEscape(item) + "</string>\n";
        out += in2 + "</list>\n";
        break;
    }
    out += ind + "   </field>\n";
  }
  out += ind + "</structure>\n";
}

std::string xml(const Result& r) {
  if (r.shape == Result::Shape::Nothing) return {};
  std::string out = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
  out += "<output xmlns=\"http://www.vmware.com/Products/ESX/5.0/esxcli\">\n<root>\n";
  if (r.shape == Result::Shape::Single) {
    if (!r.items.empty()) xmlStructure(out, r.items[0], "   ");
  } else {
    out += "   <list type=\"structure\">\n";
    for (const auto& s : r.items) xmlStructure(out, s, "      ");
    out += "   </list>\n";
  }
  out += "</root>\n</output>\n";
  return out;
}

std::string csvCell(const std::string& t) {
  // V: "1,Management Network,0,vSwitch0," -- a space needs no quotes. [R] a comma, quote or line break does.
  if (t.find_first_of(",\"\r\n") == std::string::npos) return t;
  std::string q = "\"";
  for (char c : t) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string csv(const Result& r) {
  if (r.shape == Result::Shape::Nothing) return {};
  const Structure& shape = r.shape == Result::Shape::Table ? r.columns : (r.items.empty() ? r.columns : r.items[0]);
  if (r.items.empty()) return {};  // [R] no rows, no header
  std::string out;
  for (const Field* f : sortedFields(shape)) out += key(f->label) + ",";
  out += "\n";
  for (const auto& s : r.items) {
    for (const Field* f : sortedFields(s)) {
      const Value& v = f->value;
      std::string t = v.kind == Value::Kind::StringList ? join(v.list, ",")  // [R] list items joined by ","
                      : v.kind == Value::Kind::Integer  ? std::to_string(v.i)
                                                        : humanText(v);
      out += csvCell(t) + ",";
    }
    out += "\n";
  }
  return out;
}

}  // namespace

std::string render(const Result& r, Formatter f) {
  switch (f) {
    case Formatter::Human: return human(r);
    case Formatter::KeyValue: return keyvalue(r);
    case Formatter::Xml: return xml(r);
    case Formatter::Csv: return csv(r);
  }
  return {};
}

}  // namespace esxemu
