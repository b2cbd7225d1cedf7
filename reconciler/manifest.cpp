#include "reconciler/manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace vnetplan {

namespace fs = std::filesystem;

std::string pointerEscape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

SourceLoc Document::at(const std::string& pointer) const {
  std::string p = pointer;
  while (true) {
    auto it = valueLocs.find(p);
    if (it != valueLocs.end()) return it->second;
    if (p.empty()) return loc;
    auto slash = p.rfind('/');
    p = slash == std::string::npos ? "" : p.substr(0, slash);
  }
}

SourceLoc Document::keyAt(const std::string& pointer) const {
  auto it = keyLocs.find(pointer);
  return it != keyLocs.end() ? it->second : at(pointer);
}

namespace {

// YAML 1.2 core schema resolution for plain scalars.
Json resolvePlainScalar(const std::string& s) {
  static const std::regex kInt(R"([-+]?[0-9]+)");
  static const std::regex kOct(R"(0o[0-7]+)");
  static const std::regex kHex(R"(0x[0-9a-fA-F]+)");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const char c = s[0];
  bool maybeNumber = (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.';
  if (!maybeNumber) return s;
  errno = 0;
  if (std::regex_match(s, kInt)) {
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE) return s;  // out of range: leave as text, the schema reports the type
    return static_cast<int64_t>(v);
  }
  if (std::regex_match(s, kOct)) return static_cast<int64_t>(std::strtoll(s.c_str() + 2, nullptr, 8));
  if (std::regex_match(s, kHex)) return static_cast<int64_t>(std::strtoll(s.c_str() + 2, nullptr, 16));
  if (std::regex_match(s, kFloat)) {
    double d = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(d)) return d;
  }
  return s;
}

struct Converter {
  Document& doc;
  Diagnostics& diags;
  const LoadLimits& limits;
  size_t nodes = 0;
  bool aborted = false;

  SourceLoc locOf(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    if (m.line < 0) return doc.loc;
    return SourceLoc{doc.file, m.line + 1, m.column + 1};
  }

  Json convert(const YAML::Node& n, const std::string& ptr, size_t depth) {
    if (aborted) return nullptr;
    if (++nodes > limits.maxNodesPerDocument) {
      diags.error(locOf(n), "document expands to more than " + std::to_string(limits.maxNodesPerDocument) +
                                " nodes (YAML alias/anchor bomb?); refusing to read it",
                  "yaml-too-large");
      aborted = true;
      return nullptr;
    }
    if (depth > limits.maxDepth) {
      diags.error(locOf(n), "document nests deeper than " + std::to_string(limits.maxDepth) + " levels",
                  "yaml-too-deep");
      aborted = true;
      return nullptr;
    }
    doc.valueLocs.emplace(ptr, locOf(n));
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Scalar: {
        const std::string& tag = n.Tag();
        const std::string& s = n.Scalar();
        if (tag == "!" || tag == "tag:yaml.org,2002:str") return s;
        if (tag == "?" || tag.empty()) return resolvePlainScalar(s);
        if (tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:bool" ||
            tag == "tag:yaml.org,2002:float" || tag == "tag:yaml.org,2002:null") {
          Json v = resolvePlainScalar(s);
          return v;
        }
        diags.error(locOf(n), "unsupported YAML tag '" + tag + "'", "yaml-tag");
        return s;
      }
      case YAML::NodeType::Sequence: {
        Json arr = Json::array();
        size_t i = 0;
        for (const auto& item : n) {
          arr.push_back(convert(item, ptr + "/" + std::to_string(i), depth + 1));
          ++i;
          if (aborted) break;
        }
        return arr;
      }
      case YAML::NodeType::Map: {
        Json obj = Json::object();
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) {
            diags.error(locOf(kv.first), "mapping keys must be plain strings", "yaml-key");
            continue;
          }
          const std::string key = kv.first.Scalar();
          const std::string childPtr = ptr + "/" + pointerEscape(key);
          if (obj.contains(key)) {
            diags.error(locOf(kv.first),
                        "duplicate key '" + key + "' (first at " + doc.keyAt(childPtr).str() + ")",
                        "yaml-duplicate-key");
            continue;
          }
          doc.keyLocs.emplace(childPtr, locOf(kv.first));
          obj[key] = convert(kv.second, childPtr, depth + 1);
          if (aborted) break;
        }
        return obj;
      }
    }
    return nullptr;
  }
};

std::vector<Document> parseText(const std::string& text, const std::string& name, Diagnostics& diags,
                                const LoadLimits& limits) {
  std::vector<Document> docs;
  if (text.find('\0') != std::string::npos) {
    diags.error(SourceLoc{name, 1, 1}, "file contains NUL bytes; not a YAML text file", "yaml-binary");
    return docs;
  }
  std::vector<YAML::Node> nodes;
  try {
    nodes = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    SourceLoc loc{name, e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0};
    diags.error(loc, "YAML syntax error: " + e.msg, "yaml-syntax");
    return docs;
  } catch (const std::exception& e) {
    diags.error(SourceLoc{name, 0, 0}, std::string("YAML error: ") + e.what(), "yaml-syntax");
    return docs;
  }
  int index = 0;
  for (const auto& node : nodes) {
    int thisIndex = index++;
    if (node.IsNull()) continue;  // empty document (e.g. a trailing ---)
    Document doc;
    doc.file = name;
    doc.index = thisIndex;
    const YAML::Mark m = node.Mark();
    doc.loc = SourceLoc{name, m.line >= 0 ? m.line + 1 : 1, m.column >= 0 ? m.column + 1 : 1};
    Converter conv{doc, diags, limits};
    try {
      doc.body = conv.convert(node, "", 0);
    } catch (const std::exception& e) {
      diags.error(doc.loc, std::string("YAML error: ") + e.what(), "yaml-syntax");
      continue;
    }
    if (conv.aborted) continue;
    if (!doc.body.is_object()) {
      diags.error(doc.loc, "a manifest document must be a mapping with apiVersion, kind, metadata and spec",
                  "manifest-shape");
      continue;
    }
    docs.push_back(std::move(doc));
  }
  return docs;
}

bool isManifestFile(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}

}  // namespace

std::vector<Document> loadManifestText(const std::string& text, const std::string& name, Diagnostics& diags,
                                       const LoadLimits& limits) {
  if (text.size() > limits.maxFileBytes) {
    diags.error(SourceLoc{name, 0, 0},
                "file is larger than " + std::to_string(limits.maxFileBytes) + " bytes; refusing to read it",
                "file-too-large");
    return {};
  }
  return parseText(text, name, diags, limits);
}

std::vector<Document> loadManifests(const std::vector<std::string>& paths, Diagnostics& diags,
                                    const LoadLimits& limits) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      diags.error(SourceLoc{p, 0, 0}, "no such file or directory", "manifest-path");
      continue;
    }
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && isManifestFile(it->path())) found.push_back(it->path().string());
      }
      if (ec) diags.error(SourceLoc{p, 0, 0}, "cannot read directory: " + ec.message(), "manifest-path");
      std::sort(found.begin(), found.end());
      if (found.empty()) diags.warning(SourceLoc{p, 0, 0}, "directory holds no *.yaml or *.yml files", "manifest-path");
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);
    }
  }
  std::vector<Document> docs;
  std::set<std::string> seen;
  for (const auto& f : files) {
    if (!seen.insert(fs::weakly_canonical(f).string()).second) continue;  // same file named twice
    std::error_code ec;
    auto size = fs::file_size(f, ec);
    if (!ec && size > limits.maxFileBytes) {
      diags.error(SourceLoc{f, 0, 0},
                  "file is larger than " + std::to_string(limits.maxFileBytes) + " bytes; refusing to read it",
                  "file-too-large");
      continue;
    }
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      diags.error(SourceLoc{f, 0, 0}, std::string("cannot open: ") + std::strerror(errno), "manifest-path");
      continue;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    auto parsed = parseText(ss.str(), f, diags, limits);
    for (auto& d : parsed) docs.push_back(std::move(d));
  }
  return docs;
}

}  // namespace vnetplan
