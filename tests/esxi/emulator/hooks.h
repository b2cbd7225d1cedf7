// Test hooks of the emulator, read from files next to the state so that a test can change them between two SSH
// calls (nothing here exists on a real ESXi host):
//
// ESXCLI_LOG     one line per invocation: the arguments after "esxcli" as a JSON array, appended under the state
//                lock, so a test or benchmark counts invocations (and sees their order) exactly.
// ESXCLI_FAULTS  a JSON array of rules (or {"rules": [...]}), tried in order; the first that fires decides:
//                  {"match": "portgroup add",  substring of the space-joined arguments (absent: every invocation)
//                   "nth": 2,                  fire from the 2nd matching invocation on ... (absent: from the 1st)
//                   "count": 1,                ... this many times (absent: once if nth is given, else always)
//                   "action": "fail",          fail | hang | garbage | truncate
//                   "message": "...",          fail: printed instead of the command's output
//                   "exitCode": 1,             fail (default 1), garbage and truncate (default 0)
//                   "when": "before",          fail: "before" (nothing changes) or "after" (the change is made,
//                                              then the failure reported -- a lying host)
//                   "seconds": 30,             hang: how long (default 3600); then the command runs normally.
//                                              The state lock is released while hanging, and a hang ends early
//                                              when the SSH channel is gone (stdout closed)
//                   "output": "...",           garbage: printed instead of the formatter's output
//                   "bytes": 40}               truncate: print only the first N bytes (default: half)
//                Matches are counted across invocations in ESXCLI_FAULTS + ".counts" (keyed by the rule's text,
//                so rewriting the rules starts the counts afresh).
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace esxemu {

struct Fault {
  std::string action;  // fail | hang | garbage | truncate
  std::string message;
  std::optional<int> exitCode;
  bool after = false;
  double seconds = 3600;
  std::optional<std::string> output;
  std::optional<long long> bytes;
};

// Appends the invocation to ESXCLI_LOG (if set).
void logInvocation(const std::vector<std::string>& args);

// The fault to inject into this invocation, if a rule of ESXCLI_FAULTS fires (updates the match counts).
// A malformed faults file is reported as a fault of its own ("fail" with the parse error): a test that writes a
// bad rule must not silently run without it.
std::optional<Fault> faultFor(const std::vector<std::string>& args);

// Sleeps up to `seconds`; returns early (false) when stdout's reader is gone.
bool hangWhileConnected(double seconds);

}  // namespace esxemu
