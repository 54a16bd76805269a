package testenv

import (
	"os"
	"path/filepath"
)

// IsolateAWS keeps a test process away from the machine's AWS
// configuration: no shared config or credentials files, no profile, region,
// endpoint or credentials from the environment, and never the instance
// metadata service (a test sends nothing beyond loopback). Tests then hand
// credentials to the SDK through the environment, as a deployment would
// (see UseMinIOCredentials). Call it from TestMain; it returns a cleanup.
func IsolateAWS() (cleanup func()) {
	dir, err := os.MkdirTemp("", "certcache-aws")
	if err != nil {
		panic(err)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION", "AWS_DEFAULTS_MODE", "AWS_CA_BUNDLE"} {
		os.Unsetenv(k)
	}
	for k, v := range map[string]string{
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		os.Setenv(k, v)
	}
	return func() { os.RemoveAll(dir) }
}

// UseMinIOCredentials gives the whole process MinIO's root credentials
// through AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, for TestMain of
// packages whose tests run in parallel (t.Setenv cannot).
func UseMinIOCredentials() {
	os.Setenv("AWS_ACCESS_KEY_ID", MinIOUser)
	os.Setenv("AWS_SECRET_ACCESS_KEY", MinIOPassword)
}

// UseAzuriteAccount gives the whole process an Azurite account through
// AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, and clears the other Azure
// Storage credentials so that they do not take precedence.
func UseAzuriteAccount(a AzuriteAccount) {
	os.Unsetenv("AZURE_STORAGE_CONNECTION_STRING")
	os.Unsetenv("AZURE_STORAGE_SAS_TOKEN")
	os.Setenv("AZURE_STORAGE_ACCOUNT", a.Name)
	os.Setenv("AZURE_STORAGE_KEY", a.Key)
}
