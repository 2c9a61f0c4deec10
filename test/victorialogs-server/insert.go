package main

import (
	"bufio"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
)

// handleJSONLine ingests newline-delimited JSON like VictoriaLogs' /insert/jsonline. Parameters come
// from the query string (r.FormValue) or VL-* headers. As in VictoriaLogs, a POST with the default
// form content type has its body consumed as a form by r.FormValue and stores nothing; clients must
// send Content-Type: application/stream+json.
func handleJSONLine(s *logstorage.Storage, w http.ResponseWriter, r *http.Request) {
	msgFields := splitList(param(r, "_msg_field", "VL-Msg-Field"))
	timeField := param(r, "_time_field", "VL-Time-Field")
	if timeField == "" {
		timeField = "_time"
	}
	streamFields := splitList(param(r, "_stream_fields", "VL-Stream-Fields"))

	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			httpError(w, http.StatusBadRequest, "cannot read gzipped request body: %s", err)
			return
		}
		defer zr.Close()
		body = zr
	}

	lr := logstorage.GetLogRows(streamFields, nil, nil, nil, "missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field")
	defer logstorage.PutLogRows(lr)
	p := logstorage.GetJSONParser()
	defer logstorage.PutJSONParser(p)

	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var fields []logstorage.Field
	skipped := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if err := p.ParseLogMessage(line, nil, ""); err != nil {
			skipped++
			logger.Warnf("skipping invalid JSON line: %s", err)
			continue
		}
		ts, rest, err := extractTimestamp(p.Fields, timeField)
		if err != nil {
			skipped++
			logger.Warnf("skipping line: %s", err)
			continue
		}
		fields = renameMsgField(fields[:0], rest, msgFields)
		lr.MustAdd(logstorage.TenantID{}, ts, fields, -1)
		if lr.NeedFlush() {
			s.MustAddRows(lr)
			lr.ResetKeepSettings()
		}
	}
	if err := sc.Err(); err != nil {
		httpError(w, http.StatusBadRequest, "cannot read request body: %s", err)
		return
	}
	s.MustAddRows(lr)
	if skipped > 0 {
		logger.Warnf("/insert/jsonline skipped %d invalid lines", skipped)
	}
	w.WriteHeader(http.StatusOK)
}

func param(r *http.Request, arg, header string) string {
	if v := r.FormValue(arg); v != "" {
		return v
	}
	return r.Header.Get(header)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// extractTimestamp takes the time field out of fields (the storage keeps _time separately and
// warns about a leftover _time field) and parses it. Missing, empty or "0" means now.
func extractTimestamp(fields []logstorage.Field, timeField string) (int64, []logstorage.Field, error) {
	out := fields[:0:0]
	value := ""
	for _, f := range fields {
		if f.Name == timeField {
			value = f.Value
			continue
		}
		out = append(out, f)
	}
	ts, err := parseTimestamp(value)
	return ts, out, err
}

// parseTimestamp accepts RFC3339 (optionally with nanoseconds) and Unix timestamps in seconds
// (with an optional fraction), milliseconds, microseconds or nanoseconds, told apart by magnitude
// the way VictoriaLogs does.
func parseTimestamp(s string) (int64, error) {
	if s == "" || s == "0" {
		return time.Now().UnixNano(), nil
	}
	if ts, ok := logstorage.TryParseTimestampRFC3339Nano(s); ok {
		return ts, nil
	}
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, err
		}
		return int64(math.Round(f * 1e9)), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	a := n
	if a < 0 {
		a = -a
	}
	switch {
	case a < 1<<31:
		return n * 1e9, nil
	case a < 1e3*(1<<31):
		return n * 1e6, nil
	case a < 1e6*(1<<31):
		return n * 1e3, nil
	default:
		return n, nil
	}
}

// renameMsgField stores the first non-empty of msgFields as _msg (the storage's canonical name for
// the message is the empty string, and it maps "_msg" to it).
func renameMsgField(dst, fields []logstorage.Field, msgFields []string) []logstorage.Field {
	msgIdx := -1
	for _, name := range msgFields {
		for i := range fields {
			if fields[i].Name == name && fields[i].Value != "" {
				msgIdx = i
				break
			}
		}
		if msgIdx >= 0 {
			break
		}
	}
	for i, f := range fields {
		if i == msgIdx {
			f.Name = "_msg"
		}
		dst = append(dst, f)
	}
	return dst
}
