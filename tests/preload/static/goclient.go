// A Go HTTP client built with CGO_ENABLED=0: static, its own DNS resolver,
// raw system calls; LD_PRELOAD cannot reach it.
//
//	goclient URL [N]  fetches URL N times at once (default 1), prints the
//	first body and "fetched K"; exit 0 only if all N succeeded.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	url := os.Args[1]
	n := 1
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	// One connection per request: N concurrent connects, not a reused one.
	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0},
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok, first := 0, ""
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(url)
			if err != nil {
				fmt.Fprintln(os.Stderr, "error:", err)
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if err == nil && resp.StatusCode == 200 {
				ok++
				first = string(body)
			}
		}()
	}
	wg.Wait()
	fmt.Print(first)
	fmt.Println("fetched", ok)
	if ok != n {
		os.Exit(1)
	}
}
