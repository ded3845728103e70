// Command keyward is the Keyward key management service.
//
//	keyward server [flags]   run the server
//	keyward identity ...     KES client identities and API keys
//	keyward version          print the version
//	keyward <noun> <verb>    the admin CLI (internal/cli): kms, key, datakey, ...
//
// main wires every component; nothing else reaches for globals.
package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"

	"github.com/keyward/keyward/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		if err := runServer(os.Args[2:], os.Environ(), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "keyward:", err)
			os.Exit(1)
		}
	case "bench":
		if err := runBench(os.Args[2:], parseEnv(os.Environ()), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "keyward:", err)
			os.Exit(1)
		}
	case benchCeilingCommand:
		if err := runBenchCeiling(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "keyward:", err)
			os.Exit(1)
		}
	case "identity":
		if err := runIdentity(os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "keyward:", err)
			os.Exit(1)
		}
	case "version", "--version", "-v":
		fmt.Printf("keyward %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	case "help", "--help", "-h":
		usage()
	default:
		if slices.Contains(cli.Nouns, os.Args[1]) {
			os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
		}
		fmt.Fprintf(os.Stderr, "keyward: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  keyward server [--dev] [--address HOST:PORT] [--data-dir DIR]
                 [--tls-cert FILE --tls-key FILE] [--allow-immediate-deletion]
  keyward bench [--endpoint URL] [--ops generate,decrypt] [--concurrency 1,4,16,64]
                [--duration 10s | --requests N] [--vault-addr URL] [--ceiling] [--json]
  keyward identity new [--key FILE --cert FILE] | of API-KEY|CERT-FILE|-
                 KES client identities and API keys (docs/kes-api.md)
  keyward version

Run "keyward server --help" for the server flags and their environment variables,
"keyward bench --help" for the load generator's.

`+cli.Usage())
}
