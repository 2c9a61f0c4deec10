// Command go-anchor-plugin is the smallest Velero plugin a Go author would write without
// Velero's framework: go-plugin's Serve with Velero's handshake, a PluginLister advertising
// one BackupItemActionV2 ("example.io/anchor") and that action, which passes items through.
// It is the reference point for the startup time of the TypeScript plugin: same handshake,
// same services, nothing else. It must also pass every velero-host check.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"velerogen/biav2"
	"velerogen/generated"
)

const anchorName = "example.io/anchor"

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "VELERO_PLUGIN",
	MagicCookieValue: "hello",
}

// stderr is the process's real fd 2, captured before plugin.Serve swaps os.Stderr for a pipe
// that go-plugin 1.0.1 never drains in gRPC mode (Velero's framework does the same capture).
var stderr = os.Stderr
var stderrMu sync.Mutex

// logLine writes one log line in the format go-plugin and Velero expect: a JSON object with
// string @level and @message, no @timestamp, string-valued fields.
func logLine(level, msg string, fields map[string]string) {
	line := map[string]string{"@level": level, "@message": msg}
	for k, v := range fields {
		line[k] = v
	}
	b, _ := json.Marshal(line)
	stderrMu.Lock()
	defer stderrMu.Unlock()
	stderr.Write(append(b, '\n'))
}

type lister struct {
	generated.UnimplementedPluginListerServer
}

// ListPlugins advertises the path this process was started with: Velero execs that command
// again whenever it needs the plugin.
func (lister) ListPlugins(context.Context, *generated.Empty) (*generated.ListPluginsResponse, error) {
	return &generated.ListPluginsResponse{Plugins: []*generated.PluginIdentifier{
		{Command: os.Args[0], Kind: "BackupItemActionV2", Name: anchorName},
	}}, nil
}

type backupItemAction struct {
	biav2.UnimplementedBackupItemActionServer
}

// route mirrors Velero's server mux: requests carry the plugin name, unknown names are errors.
func route(name string) error {
	if name != anchorName {
		return fmt.Errorf("BackupItemActionV2 plugin: %s was not found or has an invalid name format", name)
	}
	return nil
}

func (backupItemAction) AppliesTo(_ context.Context, req *biav2.BackupItemActionAppliesToRequest) (*biav2.BackupItemActionAppliesToResponse, error) {
	if err := route(req.GetPlugin()); err != nil {
		return nil, err
	}
	return &biav2.BackupItemActionAppliesToResponse{ResourceSelector: &generated.ResourceSelector{
		IncludedResources: []string{"pods"},
		Selector:          "app=anchor",
	}}, nil
}

// Execute decodes its inputs as Velero's framework does (item as an object with a kind, backup
// as an object) so that malformed requests get an error, then returns the item unchanged.
func (backupItemAction) Execute(_ context.Context, req *biav2.ExecuteRequest) (*biav2.ExecuteResponse, error) {
	if err := route(req.GetPlugin()); err != nil {
		return nil, err
	}
	var item map[string]interface{}
	if err := json.Unmarshal(req.GetItem(), &item); err != nil {
		return nil, fmt.Errorf("decoding item: %v", err)
	}
	kind, _ := item["kind"].(string)
	if kind == "" {
		return nil, errors.New("decoding item: object has no kind")
	}
	metadata, _ := item["metadata"].(map[string]interface{})
	namespace, _ := metadata["namespace"].(string)
	name, _ := metadata["name"].(string)
	var backup map[string]interface{}
	if err := json.Unmarshal(req.GetBackup(), &backup); err != nil {
		return nil, fmt.Errorf("decoding backup: %v", err)
	}
	logLine("info", "anchor: passing item through", map[string]string{
		"namespace": namespace, "name": name, "resource": kind,
	})
	return &biav2.ExecuteResponse{Item: req.GetItem()}, nil
}

// Progress must always carry a progress message: Velero dereferences it. The anchor starts no
// operations, so every operation is reported as finished with an error.
func (backupItemAction) Progress(_ context.Context, req *biav2.BackupItemActionProgressRequest) (*biav2.BackupItemActionProgressResponse, error) {
	if err := route(req.GetPlugin()); err != nil {
		return nil, err
	}
	return &biav2.BackupItemActionProgressResponse{Progress: &generated.OperationProgress{
		Completed: true,
		Err:       fmt.Sprintf("unknown operation %q: this plugin starts no asynchronous operations", req.GetOperationID()),
	}}, nil
}

func (backupItemAction) Cancel(_ context.Context, req *biav2.BackupItemActionCancelRequest) (*emptypb.Empty, error) {
	if err := route(req.GetPlugin()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// service registers one gRPC service with go-plugin; 1.0.1 also insists on the net/rpc half.
type service struct {
	plugin.NetRPCUnsupportedPlugin
	register func(*grpc.Server)
}

func (s service) GRPCServer(_ *plugin.GRPCBroker, srv *grpc.Server) error {
	s.register(srv)
	return nil
}

func (service) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, errors.New("go-anchor-plugin only serves")
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins: plugin.PluginSet{
			"PluginLister": service{register: func(s *grpc.Server) {
				generated.RegisterPluginListerServer(s, lister{})
			}},
			"BackupItemActionV2": service{register: func(s *grpc.Server) {
				biav2.RegisterBackupItemActionServer(s, backupItemAction{})
			}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		// go-plugin's own logger writes hclog JSON with @timestamp, which Velero's parser
		// would reject; keep it to real errors only.
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: stderr, JSONFormat: true}),
	})
}
