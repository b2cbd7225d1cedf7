// The command-line interface: parses arguments and runs one subcommand. Returns the process exit code.
#pragma once

namespace vnetplan::cli {
int run(int argc, char** argv);
}  // namespace vnetplan::cli
