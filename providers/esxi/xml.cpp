#include "providers/esxi/xml.h"

#include <cctype>
#include <memory>

namespace vnetplan::esxi {

namespace {

constexpr size_t kMaxInput = 32u << 20;  // a host with thousands of port groups prints a few MB
constexpr int kMaxDepth = 16;            // esxcli nests 7 deep

struct Node {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::vector<std::unique_ptr<Node>> children;
  std::string text;  // character data directly inside this element
};

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<std::unique_ptr<Node>> document() {
    skipMisc();
    if (!startsWith("<?xml")) {
      // Tolerated: the declaration is optional in XML.
    } else {
      size_t end = s_.find("?>", pos_);
      if (end == std::string_view::npos) return fail("unterminated XML declaration");
      pos_ = end + 2;
    }
    skipMisc();
    if (pos_ >= s_.size() || s_[pos_] != '<') return fail("no XML element");
    auto root = element(0);
    if (!root) return root;
    skipMisc();
    if (pos_ != s_.size()) return fail("text after the document element");
    return root;
  }

 private:
  Error fail(const std::string& why) const {
    return Error{why + " at byte " + std::to_string(pos_)};
  }
  bool startsWith(std::string_view p) const { return s_.substr(pos_, p.size()) == p; }
  void skipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  // Whitespace and comments between elements.
  void skipMisc() {
    for (;;) {
      skipSpace();
      if (!startsWith("<!--")) return;
      size_t end = s_.find("-->", pos_ + 4);
      pos_ = end == std::string_view::npos ? s_.size() : end + 3;
    }
  }
  static bool nameChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':';
  }
  Result<std::string> name() {
    size_t start = pos_;
    while (pos_ < s_.size() && nameChar(s_[pos_])) ++pos_;
    if (pos_ == start) return fail("expected a name");
    return std::string(s_.substr(start, pos_ - start));
  }
  // Character data with the five predefined entities and numeric references decoded.
  Result<std::string> decode(std::string_view raw) const {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      char c = raw[i];
      if (c != '&') {
        out += c;
        continue;
      }
      size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos || semi - i > 10) return Error{"bad entity reference"};
      std::string_view ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "amp") out += '&';
      else if (ent == "lt") out += '<';
      else if (ent == "gt") out += '>';
      else if (ent == "quot") out += '"';
      else if (ent == "apos") out += '\'';
      else if (ent.size() > 1 && ent[0] == '#') {
        unsigned long cp = 0;
        bool hex = ent[1] == 'x' || ent[1] == 'X';
        std::string_view digits = ent.substr(hex ? 2 : 1);
        if (digits.empty()) return Error{"bad character reference"};
        for (char d : digits) {
          int v = std::isdigit(static_cast<unsigned char>(d)) ? d - '0'
                  : hex && std::isxdigit(static_cast<unsigned char>(d))
                      ? std::tolower(static_cast<unsigned char>(d)) - 'a' + 10
                      : -1;
          if (v < 0) return Error{"bad character reference"};
          cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(v);
          if (cp > 0x10FFFF) return Error{"bad character reference"};
        }
        // UTF-8
        if (cp < 0x80) out += static_cast<char>(cp);
        else if (cp < 0x800) out += static_cast<char>(0xC0 | (cp >> 6)), out += static_cast<char>(0x80 | (cp & 0x3F));
        else if (cp < 0x10000)
          out += static_cast<char>(0xE0 | (cp >> 12)), out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
              out += static_cast<char>(0x80 | (cp & 0x3F));
        else
          out += static_cast<char>(0xF0 | (cp >> 18)), out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
              out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        return Error{"unknown entity &" + std::string(ent) + ";"};
      }
      i = semi;
    }
    return out;
  }

  Result<std::unique_ptr<Node>> element(int depth) {
    if (depth > kMaxDepth) return fail("elements nested too deep");
    ++pos_;  // '<'
    auto n = std::make_unique<Node>();
    auto nm = name();
    if (!nm) return nm.error();
    n->name = *nm;
    for (;;) {
      skipSpace();
      if (pos_ >= s_.size()) return fail("unterminated tag <" + n->name);
      if (startsWith("/>")) {
        pos_ += 2;
        return n;
      }
      if (s_[pos_] == '>') {
        ++pos_;
        break;
      }
      auto an = name();
      if (!an) return an.error();
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '=') return fail("expected '=' after attribute " + *an);
      ++pos_;
      skipSpace();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) return fail("expected a quoted attribute value");
      char q = s_[pos_++];
      size_t end = s_.find(q, pos_);
      if (end == std::string_view::npos) return fail("unterminated attribute value");
      auto v = decode(s_.substr(pos_, end - pos_));
      if (!v) return fail(v.error().message);
      n->attrs[*an] = *v;
      pos_ = end + 1;
    }
    // Content: text and child elements, up to the matching end tag.
    std::string raw;
    for (;;) {
      if (pos_ >= s_.size()) return fail("missing </" + n->name + ">");
      if (s_[pos_] != '<') {
        size_t next = s_.find('<', pos_);
        if (next == std::string_view::npos) next = s_.size();
        raw += s_.substr(pos_, next - pos_);
        pos_ = next;
        continue;
      }
      if (startsWith("<!--")) {
        skipMisc();
        continue;
      }
      if (startsWith("<![CDATA[")) {
        size_t end = s_.find("]]>", pos_);
        if (end == std::string_view::npos) return fail("unterminated CDATA section");
        // Kept verbatim: mark it so decode does not touch it.
        auto t = decode(raw);
        if (!t) return fail(t.error().message);
        n->text += *t;
        raw.clear();
        n->text += s_.substr(pos_ + 9, end - pos_ - 9);
        pos_ = end + 3;
        continue;
      }
      if (startsWith("</")) {
        pos_ += 2;
        auto en = name();
        if (!en) return en.error();
        if (*en != n->name) return fail("</" + *en + "> closes <" + n->name + ">");
        skipSpace();
        if (pos_ >= s_.size() || s_[pos_] != '>') return fail("unterminated end tag </" + *en);
        ++pos_;
        auto t = decode(raw);
        if (!t) return fail(t.error().message);
        n->text += *t;
        return n;
      }
      if (startsWith("<?") || startsWith("<!")) return fail("unexpected markup");
      auto child = element(depth + 1);
      if (!child) return child;
      n->children.push_back(std::move(*child));
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

bool blank(const std::string& s) {
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

Result<XmlValue> scalar(const Node& n) {
  if (!n.children.empty()) return Error{"<" + n.name + "> has child elements"};
  XmlValue v;
  if (n.name == "string") {
    v.type = XmlValue::Type::String;
    v.text = n.text;
    return v;
  }
  if (n.name == "integer") {
    std::string t = trim(n.text);
    size_t i = (!t.empty() && t[0] == '-') ? 1 : 0;
    if (t.size() == i || t.size() > 19 || t.find_first_not_of("0123456789", i) != std::string::npos)
      return Error{"<integer> holds '" + printable(t, 30) + "'"};
    v.type = XmlValue::Type::Integer;
    v.text = t;
    v.integer = std::stoll(t);
    return v;
  }
  if (n.name == "boolean") {
    std::string t = trim(n.text);
    if (t != "true" && t != "false") return Error{"<boolean> holds '" + printable(t, 30) + "'"};
    v.type = XmlValue::Type::Boolean;
    v.boolean = t == "true";
    return v;
  }
  return Error{"unexpected <" + n.name + ">"};
}

Result<XmlValue> fieldValue(const Node& field) {
  if (!blank(field.text)) return Error{"text directly inside <field>"};
  if (field.children.size() != 1) return Error{"a <field> holds " + std::to_string(field.children.size()) + " values"};
  const Node& v = *field.children[0];
  if (v.name != "list") return scalar(v);
  XmlValue out;
  out.type = XmlValue::Type::List;
  if (!blank(v.text)) return Error{"text directly inside <list>"};
  for (const auto& item : v.children) {
    auto s = scalar(*item);
    if (!s) return s.error();
    out.list.push_back(s->type == XmlValue::Type::String ? s->text : s->type == XmlValue::Type::Boolean
                                                                          ? (s->boolean ? "true" : "false")
                                                                          : s->text);
  }
  return out;
}

Result<XmlStructure> structure(const Node& n) {
  if (n.name != "structure") return Error{"expected <structure>, found <" + n.name + ">"};
  if (!blank(n.text)) return Error{"text directly inside <structure>"};
  XmlStructure s;
  auto tn = n.attrs.find("typeName");
  s.typeName = tn == n.attrs.end() ? "" : tn->second;
  for (const auto& f : n.children) {
    if (f->name != "field") return Error{"<structure> holds <" + f->name + ">"};
    auto fn = f->attrs.find("name");
    if (fn == f->attrs.end() || fn->second.empty()) return Error{"a <field> without a name"};
    auto v = fieldValue(*f);
    if (!v) return Error{"field " + fn->second + ": " + v.error().message};
    s.fields[fn->second] = std::move(*v);
  }
  return s;
}

const XmlValue* fieldOf(const XmlStructure& s, const std::string& field) {
  auto it = s.fields.find(field);
  return it == s.fields.end() ? nullptr : &it->second;
}

Error fieldError(const XmlStructure& s, const std::string& field, const std::string& what) {
  return Error{(s.typeName.empty() ? std::string("structure") : s.typeName) + "." + field + ": " + what};
}

}  // namespace

std::string printable(std::string_view text, size_t max) {
  std::string out;
  for (size_t i = 0; i < text.size() && out.size() < max; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > 0 && out.size() >= max) out += "...";
  return out;
}

Result<std::string> XmlStructure::str(const std::string& field) const {
  const XmlValue* v = fieldOf(*this, field);
  if (!v) return fieldError(*this, field, "missing");
  if (v->type == XmlValue::Type::String || v->type == XmlValue::Type::Integer) return v->text;
  return fieldError(*this, field, "not a string");
}

Result<int64_t> XmlStructure::integer(const std::string& field) const {
  const XmlValue* v = fieldOf(*this, field);
  if (!v) return fieldError(*this, field, "missing");
  if (v->type == XmlValue::Type::Integer) return v->integer;
  // Some esxcli versions print numbers as strings.
  if (v->type == XmlValue::Type::String) {
    std::string t = trim(v->text);
    if (!t.empty() && t.size() <= 18 && t.find_first_not_of("0123456789") == std::string::npos) return std::stoll(t);
  }
  return fieldError(*this, field, "not an integer");
}

Result<bool> XmlStructure::boolean(const std::string& field) const {
  const XmlValue* v = fieldOf(*this, field);
  if (!v) return fieldError(*this, field, "missing");
  if (v->type == XmlValue::Type::Boolean) return v->boolean;
  if (v->type == XmlValue::Type::String && (v->text == "true" || v->text == "false")) return v->text == "true";
  return fieldError(*this, field, "not a boolean");
}

Result<std::vector<std::string>> XmlStructure::strings(const std::string& field) const {
  const XmlValue* v = fieldOf(*this, field);
  if (!v) return fieldError(*this, field, "missing");
  if (v->type == XmlValue::Type::List) return v->list;
  return fieldError(*this, field, "not a list");
}

Result<XmlOutput> parseEsxcliXml(std::string_view text) {
  if (text.size() > kMaxInput) return Error{"output of " + std::to_string(text.size()) + " bytes is too large"};
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return Error{"no output (expected an esxcli XML document)"};
  Parser p(text);
  auto doc = p.document();
  if (!doc) return Error{"not esxcli XML: " + doc.error().message};
  const Node& out = **doc;
  if (out.name != "output") return Error{"not esxcli XML: the document is <" + out.name + ">, not <output>"};
  if (out.children.size() != 1 || out.children[0]->name != "root")
    return Error{"not esxcli XML: <output> does not hold one <root>"};
  const Node& root = *out.children[0];
  XmlOutput result;
  if (root.children.empty()) {  // a list command with nothing to list
    result.isList = true;
    return result;
  }
  if (root.children.size() != 1) return Error{"not esxcli XML: <root> holds several values"};
  const Node& v = *root.children[0];
  if (v.name == "structure") {
    auto s = structure(v);
    if (!s) return Error{"esxcli XML: " + s.error().message};
    result.structures.push_back(std::move(*s));
    return result;
  }
  if (v.name == "list") {
    result.isList = true;
    for (const auto& c : v.children) {
      auto s = structure(*c);
      if (!s) return Error{"esxcli XML: " + s.error().message};
      result.structures.push_back(std::move(*s));
    }
    return result;
  }
  return Error{"not esxcli XML: <root> holds <" + v.name + ">"};
}

}  // namespace vnetplan::esxi
