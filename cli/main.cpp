// vnetplan entry point: everything lives in the core library (cli/app.cpp).
#include "base/retain.h"
#include "cli/app.h"

int main(int argc, char** argv) {
  // A command runs once and exits: what it built is left for the exit to reclaim (base/retain.h). 'serve'
  // turns this off for itself.
  vnetplan::setOneShotProcess(true);
  return vnetplan::cli::run(argc, argv);
}
