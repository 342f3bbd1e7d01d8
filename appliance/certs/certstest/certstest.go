// Package certstest helps test code that uses package certs: an in-memory
// KV, the conformance test any KV must pass to back certmagic's storage
// (TestStorage), and an in-process Pebble ACME server on loopback.
package certstest

import (
	"slices"
	"strings"
	"sync"

	"github.com/hearth-home/hearth/appliance/certs"
)

// MemKV is an in-memory certs.KV. The zero value is not ready; use NewMemKV.
type MemKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ certs.KV = (*MemKV)(nil)

// NewMemKV returns an empty MemKV.
func NewMemKV() *MemKV { return &MemKV{m: map[string][]byte{}} }

// NewKV returns an empty MemKV as a certs.KV, for TestStorage.
func NewKV() certs.KV { return NewMemKV() }

// Get returns a copy of the value at key, or nil when there is none.
func (kv *MemKV) Get(key string) ([]byte, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.m[key]
	if !ok {
		return nil, nil
	}
	return slices.Clone(v), nil
}

// Put stores a copy of value at key.
func (kv *MemKV) Put(key string, value []byte) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if value == nil {
		value = []byte{}
	}
	kv.m[key] = slices.Clone(value)
	return nil
}

// Delete removes key.
func (kv *MemKV) Delete(key string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	delete(kv.m, key)
	return nil
}

// List returns the keys with prefix, sorted.
func (kv *MemKV) List(prefix string) ([]string, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var keys []string
	for k := range kv.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Keys returns every key, sorted (for test failure messages).
func (kv *MemKV) Keys() []string {
	keys, _ := kv.List("")
	return keys
}
