"""Record control: locks (``locking``) and investigators' signatures (``signing``)."""
