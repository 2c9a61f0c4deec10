package main

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

// handleQuery runs a LogsQL query with the real engine and answers like VictoriaLogs'
// /select/logsql/query: one JSON object per result row (application/stream+json), values as
// strings. `* | stats count() as n` gives {"n":"<N>"}; `* | stats by (_time:1d) count() as n`
// gives one line per day, i.e. per partition.
func handleQuery(s *logstorage.Storage, w http.ResponseWriter, r *http.Request) {
	qStr := r.FormValue("query")
	if qStr == "" {
		httpError(w, http.StatusBadRequest, "missing `query` arg")
		return
	}
	q, err := logstorage.ParseQuery(qStr)
	if err != nil {
		httpError(w, http.StatusBadRequest, "cannot parse query [%s]: %s", qStr, err)
		return
	}
	start, okStart, err := timeArg(r, "start")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%s", err)
		return
	}
	end, okEnd, err := timeArg(r, "end")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%s", err)
		return
	}
	if okStart || okEnd {
		if !okStart {
			start = -1 << 63
		}
		if !okEnd {
			end = 1<<63 - 1
		} else {
			end-- // `end` is exclusive since VictoriaLogs v1.36.0
		}
		q.AddTimeFilter(start, end)
	}
	if v := r.FormValue("limit"); v != "" {
		limit, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			httpError(w, http.StatusBadRequest, "cannot parse limit=%q: %s", v, err)
			return
		}
		if limit > 0 {
			q.AddPipeOffsetLimit(0, limit)
		}
	}

	// The query runs on several workers; rows are serialized per block under one lock and
	// sent only after the query succeeded, so an error can still get a proper status code.
	var mu sync.Mutex
	var out []byte
	writeBlock := func(_ uint, db *logstorage.DataBlock) {
		cols := db.GetColumns(false)
		rows := db.RowsCount()
		var buf []byte
		fields := make([]logstorage.Field, 0, len(cols))
		for i := 0; i < rows; i++ {
			fields = fields[:0]
			for _, c := range cols {
				fields = append(fields, logstorage.Field{Name: c.Name, Value: c.Values[i]})
			}
			buf = logstorage.MarshalFieldsToJSON(buf, fields)
			buf = append(buf, '\n')
		}
		mu.Lock()
		out = append(out, buf...)
		mu.Unlock()
	}
	qctx := logstorage.NewQueryContext(r.Context(), &logstorage.QueryStats{}, []logstorage.TenantID{{}}, q, false, nil)
	if err := s.RunQuery(qctx, writeBlock); err != nil {
		httpError(w, http.StatusBadRequest, "cannot execute query [%s]: %s", qStr, err)
		return
	}
	w.Header().Set("Content-Type", "application/stream+json")
	_, _ = w.Write(out)
}

// timeArg parses start/end: RFC3339 or Unix time in seconds, milliseconds, micro- or nanoseconds.
func timeArg(r *http.Request, name string) (int64, bool, error) {
	v := r.FormValue(name)
	if v == "" {
		return 0, false, nil
	}
	ts, err := parseTimestamp(v)
	if err != nil {
		return 0, false, &argError{name: name, value: v, err: err}
	}
	return ts, true, nil
}

type argError struct {
	name, value string
	err         error
}

func (e *argError) Error() string {
	return "cannot parse " + e.name + "=" + strconv.Quote(e.value) + ": " + e.err.Error()
}
