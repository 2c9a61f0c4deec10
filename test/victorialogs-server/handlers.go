package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/appmetrics"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
)

// newHandler routes requests the way VictoriaLogs' single node does. Unknown paths get 400
// "unsupported path requested", as VictoriaLogs answers them.
func newHandler(s *logstorage.Storage) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if strings.HasPrefix(path, "/internal/") {
			if !checkInternalAuth(w, r, path) {
				return
			}
			// Newer releases check the method after the auth key (C.2: auth runs first).
			if *internalPostOnly && r.Method != http.MethodPost {
				httpError(w, http.StatusMethodNotAllowed, "Only POST method is allowed; got %s.", r.Method)
				return
			}
		}
		switch path {
		case "/health":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("OK"))
		case "/metrics":
			// VictoriaLogs' page comes from the same lib/appmetrics: process metrics, every flag as
			// flag{name, value, is_set} 1, and vm_app_version, whose labels are empty as in a Debian
			// build (this is not a VictoriaLogs release). vl_partitions is VictoriaLogs' own gauge.
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			appmetrics.WritePrometheusMetrics(w)
			_, _ = fmt.Fprintf(w, "vl_partitions %d\n", len(s.PartitionList()))
		case "/insert/jsonline":
			handleJSONLine(s, w, r)
		case "/select/logsql/query":
			handleQuery(s, w, r)
		case "/internal/force_flush":
			s.DebugFlush()
			w.WriteHeader(http.StatusOK)
		case "/internal/partition/list":
			names := s.PartitionList()
			sort.Strings(names)
			writeJSON(w, http.StatusOK, nonNil(names))
		case "/internal/partition/attach":
			partitionAttachDetach(w, r, s.PartitionAttach)
		case "/internal/partition/detach":
			partitionAttachDetach(w, r, s.PartitionDetach)
		case "/internal/partition/snapshot/create":
			handleSnapshotCreate(s, w, r)
		case "/internal/partition/snapshot/list":
			writeJSON(w, http.StatusOK, nonNil(s.PartitionSnapshotList()))
		case "/internal/partition/snapshot/delete":
			if *legacySnapshotAPI {
				unsupportedPath(w, r)
				return
			}
			handleSnapshotDelete(s, w, r)
		case "/internal/partition/snapshot/delete_stale":
			if *legacySnapshotAPI {
				unsupportedPath(w, r)
				return
			}
			handleSnapshotDeleteStale(s, w, r)
		default:
			unsupportedPath(w, r)
		}
	})
}

// checkInternalAuth mirrors VictoriaMetrics' httpserver.CheckAuthFlag: the authKey query or form
// argument must equal the flag's value when the flag is set; the messages are the real ones.
func checkInternalAuth(w http.ResponseWriter, r *http.Request, path string) bool {
	flagName, expected := "", ""
	switch {
	case strings.HasPrefix(path, "/internal/partition/"):
		flagName, expected = "partitionManageAuthKey", *partitionManageAuthKey
	case path == "/internal/force_flush":
		flagName, expected = "forceFlushAuthKey", *forceFlushAuthKey
	}
	if expected == "" {
		return true
	}
	got := r.FormValue("authKey")
	if got == "" {
		httpError(w, http.StatusUnauthorized, "Expected to receive non-empty authKey when -%s is set", flagName)
		return false
	}
	if got != expected {
		httpError(w, http.StatusUnauthorized, "The provided authKey doesn't match -%s", flagName)
		return false
	}
	return true
}

func partitionAttachDetach(w http.ResponseWriter, r *http.Request, f func(name string) error) {
	name := r.FormValue("name")
	if name == "" {
		httpError(w, http.StatusBadRequest, "missing `name` query arg")
		return
	}
	if err := f(name); err != nil {
		httpError(w, http.StatusBadRequest, "%s", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func handleSnapshotCreate(s *logstorage.Storage, w http.ResponseWriter, r *http.Request) {
	if *legacySnapshotAPI {
		// v1.31-v1.43: one partition per call, selected by name= only (VictoriaMetrics issue #10464).
		name := r.FormValue("name")
		for _, p := range s.PartitionList() {
			if p == name {
				paths := s.PartitionSnapshotMustCreate(name)
				if len(paths) == 1 {
					writeJSON(w, http.StatusOK, paths[0])
					return
				}
			}
		}
		httpError(w, http.StatusBadRequest, "cannot create snapshot from partition %q, because it is missing", name)
		return
	}
	// v1.44+: partition_prefix (YYYYMMDD, YYYYMM, YYYY, or empty for all), falling back to name=.
	// A prefix that matches nothing is not an error: the answer is [].
	prefix := r.FormValue("partition_prefix")
	if prefix == "" {
		prefix = r.FormValue("name")
	}
	writeJSON(w, http.StatusOK, nonNil(s.PartitionSnapshotMustCreate(prefix)))
}

func handleSnapshotDelete(s *logstorage.Storage, w http.ResponseWriter, r *http.Request) {
	path := r.FormValue("path")
	if path == "" {
		httpError(w, http.StatusBadRequest, "missing `path` query arg")
		return
	}
	if err := s.PartitionSnapshotDelete(path); err != nil {
		httpError(w, http.StatusBadRequest, "%s", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func handleSnapshotDeleteStale(s *logstorage.Storage, w http.ResponseWriter, r *http.Request) {
	maxAge := snapshotsMaxAge.Duration()
	if v := r.FormValue("max_age"); v != "" {
		nsecs, ok := logstorage.TryParseDuration(v)
		if !ok {
			httpError(w, http.StatusBadRequest, "cannot parse max_age=%q", v)
			return
		}
		maxAge = time.Duration(nsecs)
	}
	var deleted []string
	if maxAge > 0 {
		deleted = s.MustDeleteStalePartitionSnapshots(maxAge)
	}
	writeJSON(w, http.StatusOK, nonNil(deleted))
}

func unsupportedPath(w http.ResponseWriter, r *http.Request) {
	httpError(w, http.StatusBadRequest, "unsupported path requested: %q", r.URL.Path)
}

// httpError answers in VictoriaMetrics' httpserver.Errorf style: plain text, never JSON.
func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logger.Warnf("HTTP %d: %s", status, msg)
	http.Error(w, msg, status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "cannot marshal response: %s", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// nonNil makes an empty result marshal as [] (what VictoriaLogs answers), not null.
func nonNil(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}
