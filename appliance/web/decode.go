package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// decodeBody decodes one JSON object from r into v. It is the parser every
// API request body goes through.
func decodeBody(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, "invalid_request", "The request body is empty; send a JSON object.")
		case errors.As(err, &se):
			return errorf(http.StatusBadRequest, "invalid_request", "The request body is not valid JSON (at byte %d).", se.Offset)
		case errors.As(err, &te):
			return errorf(http.StatusBadRequest, "invalid_request", "The field %q must be a %s.", te.Field, te.Type)
		default:
			return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: fmt.Sprintf("The request body is not acceptable: %s.", err), Err: err}
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "invalid_request", "The request body has data after the JSON object.")
	}
	return nil
}
