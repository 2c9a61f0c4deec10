package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// go-plugin reads plugin stderr with a 64 KiB bufio.Reader; longer lines arrive in pieces that
// it logs raw at debug level, so the structured log line is lost.
const maxStderrLine = 64 * 1024

var validLevels = map[string]bool{"trace": true, "debug": true, "info": true, "warn": true, "error": true}

// stderrCollector is the ClientConfig.Stderr of one plugin process. go-plugin 1.0.1 (logStderr)
// writes each raw line to it without the newline and then writes "\n" separately (a line over
// 64 KiB as several pieces and one "\n"), and only afterwards parses the line itself. So a line
// is complete when "\n" arrives, which is still before go-plugin's parser sees it.
type stderrCollector struct {
	role  string
	echo  io.Writer // nil unless -v
	fatal func(c *stderrCollector, msg string)
	keep  bool // keep the lines themselves (single-call mode), not only the verdicts

	mu       sync.Mutex
	partial  []byte
	count    int
	problems []string
	logs     []json.RawMessage // with keep: the lines that are JSON objects, in order
	other    []string          // with keep: all other lines, in order
}

// Write records complete lines. fatal is called after the lock is released, so that it can
// read the collector (single-call mode writes its result from there).
func (c *stderrCollector) Write(p []byte) (int, error) {
	if crash := c.add(p); crash != "" {
		c.fatal(c, crash)
	}
	return len(p), nil
}

// add appends p and processes every completed line; it returns the abort message for the
// first line that would crash go-plugin, if any.
func (c *stderrCollector) add(p []byte) (fatal string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Copy: p aliases go-plugin's read buffer.
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(nil), c.partial[:i]...)
		c.partial = c.partial[i+1:]
		c.count++
		if c.echo != nil {
			fmt.Fprintf(c.echo, "[%s stderr] %s\n", c.role, line)
		}
		if c.keep {
			var obj map[string]interface{}
			if json.Unmarshal(line, &obj) == nil && obj != nil {
				c.logs = append(c.logs, json.RawMessage(line))
			} else {
				c.other = append(c.other, string(line))
			}
		}
		problems, crash := checkStderrLine(line)
		if len(problems) > 0 {
			c.problems = append(c.problems, fmt.Sprintf("%s line %d: %s: %s",
				c.role, c.count, strings.Join(problems, "; "), excerpt(line, 160)))
		}
		if crash != "" && fatal == "" {
			// go-plugin is about to type-assert this value and panic, which would kill this
			// host exactly as it kills Velero. Report now, while we still can.
			fatal = fmt.Sprintf("%s line %d: %s – go-plugin's log parser panics on this, which crashes the Velero server; run aborted: %s",
				c.role, c.count, crash, excerpt(line, 160))
		}
	}
	return fatal
}

// lines returns the kept lines (see keep): JSON objects and everything else.
func (c *stderrCollector) lines() ([]json.RawMessage, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]json.RawMessage(nil), c.logs...), append([]string(nil), c.other...)
}

// result returns the number of complete lines seen and the rule violations found.
func (c *stderrCollector) result() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	problems := append([]string(nil), c.problems...)
	if len(c.partial) > 0 {
		problems = append(problems, fmt.Sprintf("%s: %d bytes after the last newline were never completed", c.role, len(c.partial)))
	}
	return c.count, problems
}

// checkStderrLine applies the rules of docs/plugin-protocol.md (Logging) to one raw stderr
// line. crash is non-empty when the line would panic go-plugin's parseJSON (a non-string
// @message/@level/@timestamp in a JSON object shorter than the read buffer).
func checkStderrLine(line []byte) (problems []string, crash string) {
	if len(line) >= maxStderrLine {
		return []string{fmt.Sprintf("line is %d bytes (must be < %d; go-plugin splits it and logs the pieces raw at debug)", len(line), maxStderrLine)}, ""
	}
	var obj map[string]interface{}
	if err := json.Unmarshal(line, &obj); err != nil || obj == nil {
		return []string{"not a JSON object (go-plugin logs it raw at debug level, invisible in Velero)"}, ""
	}
	var crashes []string
	for _, key := range []string{"@level", "@message"} {
		v, ok := obj[key]
		if !ok {
			problems = append(problems, key+" missing")
			continue
		}
		if _, isString := v.(string); !isString {
			problems = append(problems, fmt.Sprintf("%s is %s, not a string", key, jsonType(v)))
			crashes = append(crashes, fmt.Sprintf("%s is %s", key, jsonType(v)))
		}
	}
	if level, ok := obj["@level"].(string); ok && !validLevels[level] {
		problems = append(problems, fmt.Sprintf("@level %q is not one of trace|debug|info|warn|error", level))
	}
	if v, ok := obj["@timestamp"]; ok {
		problems = append(problems, "@timestamp present (must be omitted; go-plugin drops lines whose timestamp format differs)")
		if _, isString := v.(string); !isString {
			crashes = append(crashes, fmt.Sprintf("@timestamp is %s", jsonType(v)))
		}
	}
	// Velero's backup log counter hook type-asserts these to string and panics otherwise.
	for _, key := range []string{"name", "namespace", "resource"} {
		if v, ok := obj[key]; ok {
			if _, isString := v.(string); !isString {
				problems = append(problems, fmt.Sprintf("%q is %s, not a string (crashes Velero's log counter hook during a backup)", key, jsonType(v)))
			}
		}
	}
	sort.Strings(crashes)
	return problems, strings.Join(crashes, ", ")
}

func jsonType(v interface{}) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []interface{}:
		return "an array"
	default:
		return "an object"
	}
}

// excerpt quotes at most n bytes of b for messages.
func excerpt(b []byte, n int) string {
	if len(b) <= n {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q… (%d bytes)", b[:n], len(b))
}
