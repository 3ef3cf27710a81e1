package guard

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSecretsDetector(t *testing.T) {
	d := newSecretsDetector()
	tests := []struct {
		name string
		text string
		want []span
	}{
		{"aws access key", "key AKIAIOSFODNN7EXAMPLE here", []span{{"AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"}}},
		{"aws key too long", "AKIAIOSFODNN7EXAMPLEX", nil},
		{"github pat", "token ghp_0123456789abcdefghijABCDEFGHIJ012345.", []span{{"GITHUB_TOKEN", "ghp_0123456789abcdefghijABCDEFGHIJ012345"}}},
		{"anthropic before openai", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD", []span{{"ANTHROPIC_API_KEY", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD"}}},
		{"openai", "OPENAI sk-proj-abcdefghijklmnopqrstuvwxyz0123456789AB", []span{{"OPENAI_API_KEY", "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789AB"}}},
		{"stripe", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", []span{{"STRIPE_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}}},
		{"slack", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", []span{{"SLACK_TOKEN", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"}}},
		{"gcp", "AIzaSyA1234567890abcdefghijklmnopqrstuv", []span{{"GCP_API_KEY", "AIzaSyA1234567890abcdefghijklmnopqrstuv"}}},
		{"gitlab", "glpat-abcdefghij0123456789", []span{{"GITLAB_TOKEN", "glpat-abcdefghij0123456789"}}},
		{"jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
			[]span{{"JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}}},
		{"not a jwt", "eyJhbGciOiJIUzI1NiJ9", nil},
		{"private key", "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\ny",
			[]span{{"PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"}}},
		{"private key open ended", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn", []span{{"PRIVATE_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn"}}},
		{"public key is fine", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", nil},
		{"url credentials", "postgres://admin:hunter22@db.internal:5432/app", []span{{"URL_CREDENTIALS", "admin:hunter22"}}},
		{"url without password", "https://user@example.com/x", nil},
		{"password assignment", `db_password = "correct-horse"`, []span{{"PASSWORD", "correct-horse"}}},
		{"password in json", `{"password": "s3cr3t!!"}`, []span{{"PASSWORD", "s3cr3t!!"}}},
		{"password prose", `the password is 'Secret123'`, []span{{"PASSWORD", "Secret123"}}},
		{"api key assignment", "API_KEY: 9f8e7d6c5b4a39281706f5e4", []span{{"GENERIC_SECRET", "9f8e7d6c5b4a39281706f5e4"}}},
		{"placeholder", `password = "${DB_PASSWORD}"`, nil},
		{"short value", "password: abc", nil},
		{"constant name", `password = "DB_PASSWORD"`, nil},
		{"env reference", `pass: env.PERKEEP_TEST_PASSWORD`, nil},
		{"password comparison", `if password == 'logmein':`, []span{{"PASSWORD", "logmein"}}},
		{"numeric value", "max_tokens: 123456789012345", nil},
		{"not a key name", "timeout = 30s, region: eu-west-1", nil},
		{"basic auth", "Authorization: Basic dXNlcjpwYXNzd29yZA==", []span{{"BASIC_AUTH", "Basic dXNlcjpwYXNzd29yZA=="}}},
		{"basic prose", "Basic understanding of networking", nil},
		// Context rules: no provider prefix needed.
		{"bearer header", `curl -H "Authorization: Bearer q8Xz2LmN4pR7tV1wK9yB3cD6"`, []span{{"GENERIC_SECRET", "q8Xz2LmN4pR7tV1wK9yB3cD6"}}},
		{"padded assignment", "  password        => 'thisismypassword',", []span{{"PASSWORD", "thisismypassword"}}},
		{"quoted value with parentheses", `SECRET_KEY = 'k9(x)Zq!2mW#pL7vR'`, []span{{"GENERIC_SECRET", "k9(x)Zq!2mW#pL7vR"}}},
		{"flag with token", "vault login -method=token --vault-token s.Xq82LmZp0Rt7Ky4W", []span{{"GENERIC_SECRET", "s.Xq82LmZp0Rt7Ky4W"}}},
		{"curl user and password", "curl -u deploy:Zx81-qpLm https://example.net", []span{{"BASIC_AUTH", "deploy:Zx81-qpLm"}}},
		{"connection string", `conn = "Server=db1;Port=5432;User Id=alice;Password=Tr0ub4dor;Database=app;"`,
			[]span{{"CONNECTION_STRING", "Server=db1;Port=5432;User Id=alice;Password=Tr0ub4dor;Database=app"}}},
		{"credential pair", "user = 'alice'\npassword = 'open sesame'\n", []span{{"USERNAME", "alice"}, {"PASSWORD", "open sesame"}}},
		{"user alone", "user = 'alice'\n", nil},
		{"personal access token name", `ado_pat = "iy7mob6xjrfm2t67anxbot64umf"`, []span{{"GENERIC_SECRET", "iy7mob6xjrfm2t67anxbot64umf"}}},
		{"random token after key word", "Unseal Key 2: 0tZn+7QQCxphpHwTm7/dC3LpP5JGIbYl3PK8Sy81R+P2", []span{{"GENERIC_SECRET", "0tZn+7QQCxphpHwTm7/dC3LpP5JGIbYl3PK8Sy81R+P2"}}},
		{"hex after key word", "the api key for staging is 9c4f1e07b2d85a3e6f10c9d2", []span{{"GENERIC_SECRET", "9c4f1e07b2d85a3e6f10c9d2"}}},
		{"bare high entropy", "use Qm7xK2pLr9Tz4WvB8nC1dF6hJ3sY0aE5 for it", []span{{"HIGH_ENTROPY_STRING", "Qm7xK2pLr9Tz4WvB8nC1dF6hJ3sY0aE5"}}},
		{"identifier after key word", "key := ssa.OpAMD64VCVTPD2PSX128", nil},
		{"camel case after key word", "the token OpSelect128FromPairInt64x4 is an op", nil},
		{"selector is code", "password = cfg.DatabasePassword", nil},
		{"version after key word", "api version 2024-03-18.v1.2.3", nil},
		{"google client id", "id 244082345999-o6m8f1pmb1e76tjfj9v7b96j31e53ps5.apps.googleusercontent.com",
			[]span{{"GOOGLE_CLIENT_ID", "244082345999-o6m8f1pmb1e76tjfj9v7b96j31e53ps5.apps.googleusercontent.com"}}},
		{"arn", `alerts: "arn:aws:sns:us-west-2:123456789023:Alarm"`, []span{{"CLOUD_RESOURCE_ID", "arn:aws:sns:us-west-2:123456789023:Alarm"}}},
		{"s3 bucket host", "see my-data.s3.amazonaws.com/x", []span{{"CLOUD_RESOURCE_ID", "my-data.s3.amazonaws.com"}}},
		{"s3 bucket path", "at s3.amazonaws.com/my-data now", []span{{"CLOUD_RESOURCE_ID", "s3.amazonaws.com/my-data"}}},
		{"gradle dsl", "credentials {\n  username \"deploy\"\n  password \"Xq82-lmZp0\"\n}", []span{{"USERNAME", "deploy"}, {"PASSWORD", "Xq82-lmZp0"}}},
		{"netrc", "machine api.example.net\n  login alice\n  password pass123\n", []span{{"USERNAME", "alice"}, {"PASSWORD", "pass123"}}},
		{"xml setting", `<add key="SmtpPassword" value="Prestigitariu$"/>`, []span{{"PASSWORD", "Prestigitariu$"}}},
		{"prose is not netrc", "Password reset\nlogin page", nil},
		{"mkdir -p is not a password", "mkdir -p build/output && cp -u a b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(Config{Rules: map[string]Action{DetectorSecrets: ActionLog}})
			assert.NoError(t, err)
			got := spans(tt.text, g.Scan(tt.text))
			assert.Equal(t, tt.want, got)
			checkFindings(t, tt.text, d.Detect(tt.text, nil))
		})
	}
}

func TestSecretTypesAreConfigurable(t *testing.T) {
	d := newSecretsDetector()
	for _, typ := range []string{"AWS_ACCESS_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PRIVATE_KEY", "JWT", "PASSWORD", "GENERIC_SECRET"} {
		assert.Contains(t, d.Types(), typ)
		_, err := New(Config{Rules: map[string]Action{typ: ActionBlock}})
		assert.NoError(t, err, typ)
	}
}

func FuzzSecretsDetector(f *testing.F) {
	for _, s := range []string{"AKIAIOSFODNN7EXAMPLE", "password=\"x\"", "-----BEGIN ", "https://a:b@c", "eyJ.eyJ.", "Basic ====", "$2a$", "token: 'abc"} {
		f.Add(s)
	}
	d := newSecretsDetector()
	f.Fuzz(func(t *testing.T, text string) {
		checkDetector(t, d, text)
	})
}
