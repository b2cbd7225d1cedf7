// Text helpers of schema validation: JSON pointers, how paths and values read in messages, value checks the
// schema's own keywords need (x-format addresses, x-orderedRange).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "model/model.h"

namespace vnetplan::validation {

std::vector<std::string> splitPointer(const std::string& pointer);
bool isIndex(const std::string& s);
const Json* childOf(const Json* v, const std::string& seg);
const Json* valueAt(const Json& body, const std::vector<std::string>& segs);
std::string truncated(const std::string& s, size_t max = 60);
bool isPlainKey(const std::string& s);
std::string displayPath(const Json& body, const std::vector<std::string>& segs);
std::string formatNumber(double d);
std::string gotValue(const Json& v);
std::string gotTyped(const Json& v);
std::string quotedList(const std::vector<std::string>& names, const char* conj);
std::string typePhrase(const std::string& t);
bool valueHasType(const Json& v, const std::string& t);
size_t utf8Length(const std::string& s);
bool parseRange(const std::string& s, long long& a, long long& b);
bool checkAddressFormat(const std::string& format, const std::string& s);

}  // namespace vnetplan::validation
