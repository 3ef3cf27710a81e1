package route

import "github.com/tidwall/sjson"

func sjsonSet(doc, path, v string) (string, error) { return sjson.Set(doc, path, v) }
