package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"
	"sync"
)

// Check is one named verdict. Plugin is set for checks that run once per listed plugin, so
// that Name stays stable (e.g. "bia-execute-noop") for whoever reads the JSON report.
type Check struct {
	Name    string `json:"name"`
	Plugin  string `json:"plugin,omitempty"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// PluginInfo is one entry of the plugin's ListPlugins answer, as reported.
type PluginInfo struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Command   string `json:"command"`
	Exercised bool   `json:"exercised"`
}

// Report is the JSON document written to -report.
type Report struct {
	Checks  []Check      `json:"checks"`
	OK      bool         `json:"ok"`
	Plugins []PluginInfo `json:"plugins"`
}

// recorder collects checks from the main goroutine and, on the abort path, from go-plugin's
// stderr goroutine, hence the mutex.
type recorder struct {
	mu         sync.Mutex
	checks     []Check
	plugins    []PluginInfo
	reportPath string
	finished   bool
}

func (r *recorder) add(name, plugin string, ok bool, format string, args ...interface{}) bool {
	c := Check{Name: name, Plugin: plugin, OK: ok, Message: fmt.Sprintf(format, args...)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ok
	}
	r.checks = append(r.checks, c)
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	label := c.Name
	if c.Plugin != "" {
		label += " [" + c.Plugin + "]"
	}
	if c.Message == "" {
		fmt.Fprintf(os.Stderr, "%s %s\n", verdict, label)
	} else {
		fmt.Fprintf(os.Stderr, "%s %s: %s\n", verdict, label, c.Message)
	}
	return ok
}

func (r *recorder) pass(name, plugin, format string, args ...interface{}) bool {
	return r.add(name, plugin, true, format, args...)
}

func (r *recorder) fail(name, plugin, format string, args ...interface{}) bool {
	return r.add(name, plugin, false, format, args...)
}

// verdict records a check from a nil-or-error result: nil passes with passMsg.
func (r *recorder) verdict(name, plugin string, err error, passMsg string) bool {
	if err != nil {
		return r.fail(name, plugin, "%v", err)
	}
	return r.pass(name, plugin, "%s", passMsg)
}

func (r *recorder) setPlugins(p []PluginInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plugins = p
}

func (r *recorder) markExercised(name, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.plugins {
		if r.plugins[i].Name == name && r.plugins[i].Kind == kind {
			r.plugins[i].Exercised = true
		}
	}
}

// finish freezes the result, writes the report and returns the process exit code. Later calls
// (the main goroutine racing an abort) return 1 without writing again.
func (r *recorder) finish() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return 1
	}
	r.finished = true
	rep := Report{Checks: r.checks, OK: len(r.checks) > 0, Plugins: r.plugins}
	if rep.Checks == nil {
		rep.Checks = []Check{}
	}
	if rep.Plugins == nil {
		rep.Plugins = []PluginInfo{}
	}
	failed := 0
	for _, c := range rep.Checks {
		if !c.OK {
			rep.OK = false
			failed++
		}
	}
	if r.reportPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = ioutil.WriteFile(r.reportPath, append(data, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "velero-host: writing report: %v\n", err)
			return 1
		}
	}
	if rep.OK {
		fmt.Fprintf(os.Stderr, "velero-host: all %d checks passed\n", len(rep.Checks))
		return 0
	}
	fmt.Fprintf(os.Stderr, "velero-host: %d of %d checks failed\n", failed, len(rep.Checks))
	return 1
}
