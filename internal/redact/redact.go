// Package redact replaces secrets in error messages. The root package uses
// it for the secrets of a cache's URL; a backend whose credentials come from
// elsewhere (Azure's connection string, key or SAS token in the
// environment) uses it for those.
package redact

import "strings"

// Mask is what a secret is replaced with.
const Mask = "xxxxx"

// String returns msg with every non-empty secret replaced by Mask.
func String(msg string, secrets []string) string {
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, Mask)
		}
	}
	return msg
}
