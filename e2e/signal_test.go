package e2e

import "syscall"

const syscallSIGHUP = syscall.SIGHUP
