// Credentials out of connection strings before they reach a message, a log line, a plan or the state.
#pragma once
#include <string>
#include <string_view>

namespace vnetplan {

// "tcp:user:pass@10.0.0.1:6640" -> "tcp:***@10.0.0.1:6640"; "https://u:p@keystone/v3" -> "https://***@keystone/v3";
// "?token=abc&x=1" -> "?token=***&x=1". Strings without credentials come back unchanged.
std::string redactCredentials(std::string_view connection);

}  // namespace vnetplan
