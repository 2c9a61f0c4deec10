package main

import (
	"bytes"
	"encoding/json"
)

// The objects Velero would send for a VMSingle pod of the VictoriaMetrics operator, labelled
// for our plugin (velero-plugin-victoria.io/kind) since Velero only calls Execute for items
// matching the AppliesTo selector; this host does not evaluate selectors itself. Velero
// marshals unstructured objects with encoding/json, i.e. compact; compacting the readable
// literals below gives the same shape.

const podJSON = `{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "vmsingle-0",
    "namespace": "monitoring",
    "uid": "5c0a3f4e-9d59-4f0c-8a57-2b1f4b7e2c11",
    "resourceVersion": "482913",
    "creationTimestamp": "2026-11-20T08:15:02Z",
    "labels": {
      "app.kubernetes.io/name": "vmsingle",
      "app.kubernetes.io/instance": "vmsingle",
      "app.kubernetes.io/component": "monitoring",
      "managed-by": "vm-operator",
      "velero-plugin-victoria.io/kind": "metrics"
    },
    "annotations": {
      "backup.velero.io/backup-volumes": "data"
    },
    "ownerReferences": [
      {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "vmsingle-7d9c8b6f5", "uid": "0b1e8f2a-3c4d-4e5f-9a6b-7c8d9e0f1a2b", "controller": true, "blockOwnerDeletion": true}
    ]
  },
  "spec": {
    "volumes": [
      {"name": "data", "hostPath": {"path": "/var/lib/vmsingle", "type": "DirectoryOrCreate"}}
    ],
    "containers": [
      {
        "name": "vmsingle",
        "image": "victoriametrics/victoria-metrics:v1.110.0",
        "args": ["-storageDataPath=/victoria-metrics-data", "-retentionPeriod=1", "-httpListenAddr=:8429"],
        "ports": [{"name": "http", "containerPort": 8429, "protocol": "TCP"}],
        "volumeMounts": [{"name": "data", "mountPath": "/victoria-metrics-data"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}
      }
    ],
    "nodeName": "worker-1",
    "serviceAccountName": "vmsingle"
  },
  "status": {
    "phase": "Running",
    "podIP": "10.42.1.17",
    "hostIP": "192.168.1.21"
  }
}`

// restoredPodJSON is the pod as a RestoreItemAction receives it: Velero has already removed
// status and the server-populated metadata (uid, resourceVersion, creationTimestamp,
// ownerReferences, ...).
const restoredPodJSON = `{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "vmsingle-0",
    "namespace": "monitoring",
    "labels": {
      "app.kubernetes.io/name": "vmsingle",
      "app.kubernetes.io/instance": "vmsingle",
      "app.kubernetes.io/component": "monitoring",
      "managed-by": "vm-operator",
      "velero-plugin-victoria.io/kind": "metrics"
    },
    "annotations": {
      "backup.velero.io/backup-volumes": "data"
    }
  },
  "spec": {
    "volumes": [
      {"name": "data", "hostPath": {"path": "/var/lib/vmsingle", "type": "DirectoryOrCreate"}}
    ],
    "containers": [
      {
        "name": "vmsingle",
        "image": "victoriametrics/victoria-metrics:v1.110.0",
        "args": ["-storageDataPath=/victoria-metrics-data", "-retentionPeriod=1", "-httpListenAddr=:8429"],
        "ports": [{"name": "http", "containerPort": 8429, "protocol": "TCP"}],
        "volumeMounts": [{"name": "data", "mountPath": "/victoria-metrics-data"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}
      }
    ],
    "nodeName": "worker-1",
    "serviceAccountName": "vmsingle"
  }
}`

const backupJSON = `{
  "apiVersion": "velero.io/v1",
  "kind": "Backup",
  "metadata": {
    "name": "daily-20261121",
    "namespace": "velero",
    "uid": "9f3b2c1d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
    "labels": {"velero.io/schedule-name": "daily", "velero.io/storage-location": "default"}
  },
  "spec": {
    "includedNamespaces": ["monitoring"],
    "storageLocation": "default",
    "ttl": "720h0m0s",
    "defaultVolumesToFsBackup": false,
    "itemOperationTimeout": "4h0m0s",
    "hooks": {}
  },
  "status": {
    "version": 1,
    "formatVersion": "1.1.0",
    "phase": "InProgress",
    "startTimestamp": "2026-11-21T02:00:00Z",
    "expiration": "2026-12-21T02:00:00Z"
  }
}`

const restoreJSON = `{
  "apiVersion": "velero.io/v1",
  "kind": "Restore",
  "metadata": {
    "name": "daily-20261121-20261122093000",
    "namespace": "velero",
    "uid": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
  },
  "spec": {
    "backupName": "daily-20261121",
    "includedNamespaces": ["monitoring"],
    "restorePVs": true,
    "itemOperationTimeout": "4h0m0s"
  },
  "status": {
    "phase": "InProgress",
    "startTimestamp": "2026-11-22T09:30:00Z"
  }
}`

// fixtures holds the compacted documents.
type fixtures struct {
	pod, restoredPod, backup, restore []byte
}

func loadFixtures() fixtures {
	return fixtures{
		pod:         compact(podJSON),
		restoredPod: compact(restoredPodJSON),
		backup:      compact(backupJSON),
		restore:     compact(restoreJSON),
	}
}

func compact(s string) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		panic("fixture is not valid JSON: " + err.Error())
	}
	return b.Bytes()
}

// badInput is a malformed Execute input; the plugin must answer with an error or a valid item,
// and must survive it.
type badInput struct {
	name          string // check name suffix
	item, context []byte // context = backup or restore
}

func badInputs(goodItem, goodContext []byte, contextName string) []badInput {
	return []badInput{
		{"item-not-json", []byte(`this is not JSON {`), goodContext},
		{"item-array", []byte(`[]`), goodContext},
		{"item-no-kind", []byte(`{}`), goodContext},
		{"item-empty", nil, goodContext},
		{contextName + "-empty", goodItem, nil},
	}
}
