"""The dashboard's ipywidgets, built in one place with stable CSS classes for tests and styling."""

import ipywidgets as w

__all__ = ['CSS_CLASSES', 'DashboardWidgets', 'build_widgets']

#: The CSS class of each widget, by attribute name.
CSS_CLASSES = {
    'box': 'tb-dashboard', 'plot': 'tb-plot', 'progress': 'tb-progress', 'bar': 'tb-progress-bar',
    'progress_text': 'tb-progress-text', 'status': 'tb-status', 'save': 'tb-save',
    'resume': 'tb-resume', 'export': 'tb-export', 'stop': 'tb-stop', 'epochs': 'tb-epochs',
}


class DashboardWidgets:
    """The widgets of one dashboard, as attributes named like the keys of :data:`CSS_CLASSES`."""

    def __init__(self, epochs=1):
        self.plot = w.Image(format='png')
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0,
                                   layout=w.Layout(width='40%'))
        self.progress_text = w.Label(value='')
        self.progress = w.HBox([self.bar, self.progress_text])
        self.status = w.Label(value='')
        self.save = w.Button(description='Save', icon='save',
                             tooltip='Write a full checkpoint at the next step')
        self.resume = w.Button(description='Resume', icon='play',
                               tooltip='Load the newest valid checkpoint and train to the epochs')
        self.epochs = w.BoundedIntText(value=max(1, int(epochs)), min=1, max=10 ** 9,
                                       description='epochs', layout=w.Layout(width='150px'))
        self.export = w.Button(description='Export', icon='download',
                               tooltip='Write the parameters as .pt and .safetensors')
        self.stop = w.Button(description='Stop', icon='stop', button_style='danger',
                             tooltip='End the run at the next step')
        buttons = w.HBox([self.save, self.resume, self.epochs, self.export, self.stop])
        self.box = w.VBox([buttons, self.progress, self.status, self.plot])
        for name, css in CSS_CLASSES.items():
            getattr(self, name).add_class(css)


def build_widgets(epochs=1):
    """A fresh :class:`DashboardWidgets` with the epochs field set to ``epochs``."""
    return DashboardWidgets(epochs)
