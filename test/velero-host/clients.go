package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"velerogen/biav2"
	"velerogen/generated"
	"velerogen/riav2"
)

// Velero's handshake (pkg/plugin/framework/handshake.go).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "VELERO_PLUGIN",
	MagicCookieValue: "hello",
}

// Plugin kinds as Velero names them; they double as go-plugin dispense keys.
const (
	kindPluginLister = "PluginLister"
	kindBIAv2        = "BackupItemActionV2"
	kindRIAv2        = "RestoreItemActionV2"
	kindDIA          = "DeleteItemAction"
)

// stubPlugin adapts a generated gRPC client constructor to go-plugin's GRPCPlugin. go-plugin
// 1.0.1 requires every PluginSet value to implement the net/rpc Plugin interface too, hence the
// embedded NetRPCUnsupportedPlugin. This host never serves, so GRPCServer is an error.
type stubPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	newClient func(grpc.ClientConnInterface) interface{}
}

func (stubPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("velero-host only dispenses clients")
}

func (p stubPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (interface{}, error) {
	return p.newClient(cc), nil
}

var pluginSet = plugin.PluginSet{
	kindPluginLister: stubPlugin{newClient: func(cc grpc.ClientConnInterface) interface{} { return generated.NewPluginListerClient(cc) }},
	kindBIAv2:        stubPlugin{newClient: func(cc grpc.ClientConnInterface) interface{} { return biav2.NewBackupItemActionClient(cc) }},
	kindRIAv2:        stubPlugin{newClient: func(cc grpc.ClientConnInterface) interface{} { return riav2.NewRestoreItemActionClient(cc) }},
	kindDIA:          stubPlugin{newClient: func(cc grpc.ClientConnInterface) interface{} { return generated.NewDeleteItemActionClient(cc) }},
}

// pluginProcess is one launched plugin executable and its go-plugin client.
type pluginProcess struct {
	role      string // "discovery process", "relaunched process" or "plugin process", for messages
	cmd       *exec.Cmd
	client    *plugin.Client
	rpc       *plugin.GRPCClient
	stderr    *stderrCollector
	handshake time.Duration
}

// launched tracks every process this host started, so that the abort path can SIGKILL them.
var launched struct {
	sync.Mutex
	cmds []*exec.Cmd
}

func killAllLaunched() {
	launched.Lock()
	defer launched.Unlock()
	for _, cmd := range launched.cmds {
		if cmd.Process != nil {
			cmd.Process.Kill() // an already finished process just returns an error
		}
	}
}

// launch starts path like Velero's client builder does: exec.Command(path, serverArgs...), a
// go-plugin client with Velero's handshake and gRPC only, and Velero's environment additions
// (go-plugin 1.0.1 appends os.Environ() plus VELERO_PLUGIN, PLUGIN_MIN_PORT, PLUGIN_MAX_PORT and
// PLUGIN_PROTOCOL_VERSIONS itself). client.Client() performs the handshake.
//
// The plugin therefore inherits this host's whole environment (as it inherits Velero's); tests
// set KUBECONFIG, AWS_* and the like for the plugin by setting them for this host.
func launch(role, path string, args []string, o *options, fatal func(*stderrCollector, string)) (*pluginProcess, error) {
	cmd := exec.Command(path, args...)
	collector := &stderrCollector{role: role, fatal: fatal, keep: o.keepStderr}
	var logOut io.Writer = ioutil.Discard
	if o.verbose {
		collector.echo = os.Stderr
		logOut = os.Stderr
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          pluginSet,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		MinPort:          10000,
		MaxPort:          25000,
		Stderr:           collector,
		// go-plugin re-logs parsed plugin lines through this logger; the raw lines are
		// checked via Stderr instead, so it only matters for -v.
		Logger: hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Level: hclog.Debug, Output: logOut}),
	})
	launched.Lock()
	launched.cmds = append(launched.cmds, cmd)
	launched.Unlock()

	p := &pluginProcess{role: role, cmd: cmd, client: client, stderr: collector}
	start := time.Now()
	proto, err := client.Client()
	p.handshake = time.Since(start)
	if err != nil {
		client.Kill()
		// go-plugin 1.0.1 reports a plugin that exits before the handshake as an empty
		// "Unrecognized remote plugin message"; the exit status says more.
		if st := cmd.ProcessState; st != nil {
			err = fmt.Errorf("%v (process: %v)", err, st)
		}
		return p, fmt.Errorf("handshake with %s failed after %v: %v", path, p.handshake.Round(time.Millisecond), err)
	}
	if client.Protocol() != plugin.ProtocolGRPC {
		client.Kill()
		return p, fmt.Errorf("negotiated protocol %q, want grpc", client.Protocol())
	}
	if v := client.NegotiatedVersion(); v != int(handshake.ProtocolVersion) {
		client.Kill()
		return p, fmt.Errorf("negotiated app protocol version %d, want %d", v, handshake.ProtocolVersion)
	}
	grpcClient, ok := proto.(*plugin.GRPCClient)
	if !ok {
		client.Kill()
		return p, fmt.Errorf("go-plugin returned a %T, want *plugin.GRPCClient", proto)
	}
	p.rpc = grpcClient
	return p, nil
}

// dispense returns the generated client for kind (no RPC happens, as in Velero).
func (p *pluginProcess) dispense(kind string) (interface{}, error) {
	return p.rpc.Dispense(kind)
}

// alive verifies the process has not exited and still answers probe, the "next call works"
// test after an input that might have crashed it. Any status the server sends back (even an
// error) counts as an answer; only transport failures and timeouts do not.
func (p *pluginProcess) alive(probe func() error) error {
	if err := p.exitState(); err != nil {
		return err
	}
	if probe == nil {
		return nil
	}
	if err := probe(); err != nil && !answered(err) {
		// The transport usually notices a crash before go-plugin has reaped the process.
		time.Sleep(200 * time.Millisecond)
		if exitErr := p.exitState(); exitErr != nil {
			return exitErr
		}
		return fmt.Errorf("%s no longer answers: %v", p.role, err)
	}
	return nil
}

// exitState returns an error describing the exit if the process has exited. ProcessState is
// safe to read then: go-plugin sets the exited flag (under its lock) after cmd.Wait returned.
func (p *pluginProcess) exitState() error {
	if p.client.Exited() {
		return fmt.Errorf("%s has exited (%v)", p.role, p.cmd.ProcessState)
	}
	return nil
}

func answered(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
		return false
	}
	return true
}

// shutdown stops the process the way Velero does, via go-plugin's Kill. In go-plugin 1.0.1,
// Kill calls GRPCClient.Close (broker close, /plugin.GRPCController/Shutdown with the
// process-lifetime context and its error ignored, connection close), then waits up to 2 s for
// the process to exit and otherwise SIGKILLs it. The verdict therefore rests on how the process
// ended: exit status 0 (not a signal) within 2 s of the call.
//
// Kill has no timeout of its own: a plugin that never answers Shutdown, or a child that holds
// the stdio pipes open, would block it forever, so a watchdog SIGKILLs the process.
func (p *pluginProcess) shutdown() (time.Duration, error) {
	if p.client.Exited() {
		p.client.Kill() // releases go-plugin's goroutines and connection
		return 0, fmt.Errorf("%s exited before Shutdown was sent: %v", p.role, p.cmd.ProcessState)
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		p.client.Kill()
		close(done)
	}()
	const watchdog = 10 * time.Second
	select {
	case <-done:
	case <-time.After(watchdog):
		p.cmd.Process.Kill()
		select {
		case <-done:
			return 0, fmt.Errorf("Kill (Shutdown RPC + wait) did not return within %v; the process had to be SIGKILLed by this host", watchdog)
		case <-time.After(5 * time.Second):
			return 0, fmt.Errorf("Kill did not return within %v even after SIGKILL: something (a child process?) keeps the plugin's stdout/stderr open", watchdog)
		}
	}
	elapsed := time.Since(start)
	st := p.cmd.ProcessState
	switch {
	case st == nil:
		return elapsed, fmt.Errorf("no exit status after Kill (%v)", elapsed.Round(time.Millisecond))
	case !st.Exited() && elapsed >= 2*time.Second && isSIGKILL(st):
		return elapsed, fmt.Errorf("process did not exit within 2 s of Shutdown, so go-plugin SIGKILLed it (%v after %v); is /plugin.GRPCController/Shutdown implemented, and does the process exit after answering it?", st, elapsed.Round(time.Millisecond))
	case !st.Exited():
		return elapsed, fmt.Errorf("process ended by a signal after %v: %v", elapsed.Round(time.Millisecond), st)
	case st.ExitCode() != 0:
		return elapsed, fmt.Errorf("process exited with code %d after Shutdown (want 0)", st.ExitCode())
	case elapsed >= 2*time.Second:
		return elapsed, fmt.Errorf("process exited 0 but only after %v (Velero SIGKILLs after 2 s)", elapsed.Round(time.Millisecond))
	}
	return elapsed, nil
}

func isSIGKILL(st *os.ProcessState) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}
