// Command healthcheck probes the service on 127.0.0.1 for container
// runtimes that run a HEALTHCHECK command, because scratch and distroless
// images have no curl or wget. It exits 0 when the probe answers 200 and 1
// otherwise.
//
// Usage: healthcheck [--ready] [--port N]
//
// The port is --port, else $HEALTHCHECK_PORT, else $PORT, else 8080. The
// probe is GET /health, or GET /ready with --ready.
//
// It speaks HTTP/1.0 over a raw TCP connection instead of importing
// net/http, which would triple the binary's size.
package main

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// timeout bounds the whole probe: connect, request and status line.
const timeout = 2 * time.Second

func main() {
	path, port, ok := parseArgs(os.Args[1:], os.Getenv)
	if !ok || !probe(port, path) {
		os.Exit(1)
	}
}

// parseArgs returns the probe path and port, and false on an unknown
// argument or an invalid port.
func parseArgs(args []string, getenv func(string) string) (path, port string, ok bool) {
	path, port = "/health", ""
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--ready" || arg == "-ready":
			path = "/ready"
		case (arg == "--port" || arg == "-port") && i+1 < len(args):
			i++
			port = args[i]
		case strings.HasPrefix(arg, "--port="):
			port = strings.TrimPrefix(arg, "--port=")
		default:
			return "", "", false
		}
	}
	for _, name := range []string{"HEALTHCHECK_PORT", "PORT"} {
		if port == "" {
			port = getenv(name)
		}
	}
	if port == "" {
		port = "8080"
	}
	n, err := strconv.Atoi(port)
	return path, port, err == nil && n > 0 && n < 65536
}

// probe sends one request and reports whether the status line is 200.
func probe(port, path string) bool {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return false
	}
	defer conn.Close()
	if conn.SetDeadline(deadline) != nil {
		return false
	}

	req := "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: healthcheck\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return false
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return false
	}
	// A status line reads "HTTP/1.1 200 OK".
	fields := strings.Fields(status)
	return len(fields) >= 2 && strings.HasPrefix(fields[0], "HTTP/") && fields[1] == "200"
}
