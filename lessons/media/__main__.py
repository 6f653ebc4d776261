"""`python -m lessons.media [--worker-id ID]`: run one media worker."""

import argparse

from lessons.media.worker import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run a media worker of the lessons (selective forwarding unit).")
    parser.add_argument("--worker-id", help="this worker's id (default: MEDIA_WORKER_ID or LESSONS_MEDIA_WORKER_ID)")
    arguments = parser.parse_args()
    main(worker_id=arguments.worker_id)
