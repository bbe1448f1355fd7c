// The Go net/http server bench/http.py compares ccci's HTTP front with: it
// serves, from memory, the same bytes (status, Content-Type, body) that the
// daemon answered for each path, as Drone's own server (net/http) would.
//
//	http_go MANIFEST.json
//
// MANIFEST maps a path to {"status": 200, "ctype": "...", "file": "body"}.
// It prints the address it listens on, then serves until killed.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

type entry struct {
	Status int    `json:"status"`
	Ctype  string `json:"ctype"`
	File   string `json:"file"`
	body   []byte
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: http_go MANIFEST.json")
		os.Exit(64)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	m := map[string]*entry{}
	if err := json.Unmarshal(raw, &m); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, e := range m {
		if e.body, err = os.ReadFile(e.File); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, ok := m[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		hd := w.Header()
		if e.Ctype != "" {
			hd.Set("Content-Type", e.Ctype)
		}
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Length", strconv.Itoa(len(e.body)))
		w.WriteHeader(e.Status)
		w.Write(e.body)
	})
	if err := http.Serve(ln, h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
