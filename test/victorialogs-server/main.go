// Command victorialogs-server is the VictoriaLogs stand-in the integration tests run against.
//
// No VictoriaLogs binary exists in Debian or npm, but Debian's VictoriaMetrics -dev package vendors
// the real VictoriaLogs storage library (lib/logstorage). This program opens that library's Storage,
// so partitions, snapshots, flushing, retention and LogsQL queries are the real code; only the HTTP
// layer is ours. It answers with VictoriaLogs' paths, parameters, status codes and body shapes:
//
//	POST /insert/jsonline                       _msg_field, _time_field, _stream_fields
//	     /select/logsql/query                   query, start, end, limit; JSON lines
//	     /internal/force_flush                  -forceFlushAuthKey
//	     /internal/partition/{list,attach,detach}
//	     /internal/partition/snapshot/{create,list,delete,delete_stale}   -partitionManageAuthKey
//	     /health, /metrics
//
// Two flags emulate other server generations so clients can be tested against them:
// -internalPostOnly (releases after v1.52: /internal/* answers 405 to anything but POST) and
// -legacySnapshotAPI (v1.31-v1.43: create takes only name=YYYYMMDD and there is no delete).
//
// It must be built in GOPATH mode from inside the VictoriaMetrics source tree, so that the tree's
// vendor/ directory supplies github.com/VictoriaMetrics/VictoriaLogs (scripts/build-go.sh does it).
package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/flagutil"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
)

var (
	httpListenAddr  = flag.String("httpListenAddr", "127.0.0.1:9428", "TCP address to listen for HTTP requests; port 0 picks a free port (the chosen address is logged and written to -listenAddrFile)")
	listenAddrFile  = flag.String("listenAddrFile", "", "Optional file that receives the actual listen address once the server accepts connections")
	storageDataPath = flag.String("storageDataPath", "victoria-logs-data", "Path to the VictoriaLogs data directory")
	retentionPeriod = flagutil.NewRetentionDuration("retentionPeriod", "7d", "Log entries with timestamps older than now-retentionPeriod are dropped")
	futureRetention = flagutil.NewRetentionDuration("futureRetention", "2d", "Log entries with timestamps bigger than now+futureRetention are rejected")
	snapshotsMaxAge = flagutil.NewRetentionDuration("snapshotsMaxAge", "3d", "Partition snapshots older than this are deleted automatically; 0 disables it")
	flushInterval   = flag.Duration("inmemoryDataFlushInterval", 5*time.Second, "How often in-memory data is flushed to disk")

	partitionManageAuthKey = flag.String("partitionManageAuthKey", "", "authKey required by /internal/partition/* when set")
	forceFlushAuthKey      = flag.String("forceFlushAuthKey", "", "authKey required by /internal/force_flush when set")

	internalPostOnly  = flag.Bool("internalPostOnly", false, "Answer 405 to every /internal/* request that is not a POST, like VictoriaLogs releases after v1.52.0")
	legacySnapshotAPI = flag.Bool("legacySnapshotAPI", false, "Emulate VictoriaLogs v1.31-v1.43: snapshot/create needs name=YYYYMMDD and answers a JSON string; no snapshot/delete or delete_stale")
)

func main() {
	flag.CommandLine.SetOutput(os.Stderr)
	flag.Parse()
	logger.Init()

	cfg := &logstorage.StorageConfig{
		Retention:       retentionPeriod.Duration(),
		FutureRetention: futureRetention.Duration(),
		FlushInterval:   *flushInterval,
		SnapshotsMaxAge: snapshotsMaxAge.Duration(),
		// The tests run on small, shared disks; never flip into read-only mode because of them.
		MinFreeDiskSpaceBytes: 0,
	}
	logger.Infof("opening storage at -storageDataPath=%q", *storageDataPath)
	strg := logstorage.MustOpenStorage(*storageDataPath, cfg)

	// Listen first, then report the address: with port 0 the caller learns the real port without
	// racing another process for it.
	ln, err := net.Listen("tcp", *httpListenAddr)
	if err != nil {
		logger.Fatalf("cannot listen on -httpListenAddr=%q: %s", *httpListenAddr, err)
	}
	addr := ln.Addr().String()
	if *listenAddrFile != "" {
		tmp := *listenAddrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(addr), 0o644); err != nil {
			logger.Fatalf("cannot write -listenAddrFile: %s", err)
		}
		if err := os.Rename(tmp, *listenAddrFile); err != nil {
			logger.Fatalf("cannot write -listenAddrFile: %s", err)
		}
	}
	logger.Infof("started VictoriaLogs test server at http://%s/", addr)

	srv := &http.Server{Handler: newHandler(strg), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	sigCh := make(chan os.Signal, 1)
	signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM)
	select {
	case sig := <-sigCh:
		logger.Infof("received signal %s; shutting down", sig)
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Errorf("HTTP server failed: %s", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = srv.Shutdown(ctx)
	cancel()
	// MustClose flushes buffered rows and in-memory parts, so a restarted server sees every row
	// that was acknowledged.
	strg.MustClose()
	logger.Infof("storage closed")
}
