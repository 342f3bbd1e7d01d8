package transfer

// GuardSize reports how many nonces and rate buckets the service holds.
func (s *Service) GuardSize() (nonces, buckets int) { return s.guard.size() }
